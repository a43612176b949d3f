//! The authorization matrix: every route of the query API with who may call
//! it ([`crate::route_table`]). Routes are added through [`Routes::add`], which records each method's
//! [`Access`] as it registers the handler, so the table and the router are
//! one: a route cannot exist without its row. Handlers enforce the access
//! themselves (`authenticate`); `e2e/tests/authz_matrix.rs` walks this table
//! with every kind of key (none, revoked, each scope, another org's,
//! a platform admin's) and checks each answer against the row, and that a
//! method without a row answers 405.

use std::sync::Arc;

use axum::http::Method;
use axum::routing::MethodRouter;
use axum::Router;

use crate::state::AppState;

/// Who may call a route. A signed-in member's session stands for a key
/// (`crate::state::authorize`): every role passes `Read`, admins and owners
/// pass `Admin`, except that acknowledging an alert also admits members and
/// the members' and keys' changes admit only owners; no session passes
/// `PlatformAdmin` (`e2e/tests/sessions.rs` walks the table with each role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a key (the dashboard page, sign-in).
    Public,
    /// A key with the `read` scope (or `admin`), on its own org's data.
    Read,
    /// A key with the `admin` scope, on its own org.
    Admin,
    /// An admin key of a platform org, on any org.
    PlatformAdmin,
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// As registered, parameters in braces (`/v1/runs/{run_id}`).
    pub path: String,
    pub access: Access,
}

/// A router that keeps the matrix of the routes added to it.
pub(crate) struct Routes {
    router: Router<Arc<AppState>>,
    table: Vec<Route>,
}

impl Routes {
    pub(crate) fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Serve `handlers` at `path`; `rows` names each method it serves and
    /// who may call it.
    pub(crate) fn add(
        mut self,
        path: &str,
        rows: &[(Method, Access)],
        handlers: MethodRouter<Arc<AppState>>,
    ) -> Self {
        for (method, access) in rows {
            self.table.push(Route {
                method: method.clone(),
                path: path.to_owned(),
                access: *access,
            });
        }
        self.router = self.router.route(path, handlers);
        self
    }

    pub(crate) fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    pub(crate) fn into_parts(self) -> (Router<Arc<AppState>>, Vec<Route>) {
        (self.router, self.table)
    }
}
