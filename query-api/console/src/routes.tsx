// Every page of the console: one line each. `path` is under /console
// (`:name` is one path segment, given to the page as `params.name`);
// `nav` puts it in the navigation bar ("main") or the Admin menu ("admin");
// `under` names the navigation entry a page belongs to (highlighted on it);
// `public` pages render without signing in. The first match wins.
//
// To add a page: write src/pages/<name>.tsx exporting a component that
// takes `PageProps`, and add its line here.
import type { JSX } from "preact";
import { compile, type Params, type Pattern } from "./router";
import { AcceptInvitation } from "./pages/accept";
import { AgentPage } from "./pages/agent";
import { AgentsPage } from "./pages/agents";
import { AlertPage } from "./pages/alert";
import { AlertsPage } from "./pages/alerts";
import { BudgetsPage } from "./pages/budgets";
import { ChannelsPage } from "./pages/channels";
import { CostPage } from "./pages/cost";
import { KeysPage } from "./pages/keys";
import { MachinePage, ProjectPage } from "./pages/project";
import { MachinesPage, ProjectsPage } from "./pages/projects";
import { MembersPage } from "./pages/members";
import { Overview } from "./pages/overview";
import { PoliciesPage } from "./pages/policies";
import { PricesPage } from "./pages/prices";
import { RulesPage } from "./pages/rules";
import { RunPage } from "./pages/run";
import { RunsPage } from "./pages/runs";
import { SessionPage } from "./pages/session";
import { SessionsPage } from "./pages/sessions";
import { WorkspacePage } from "./pages/workspace";

export interface PageProps {
  params: Params;
}

export interface RouteDef extends Pattern {
  title: string;
  page: (props: PageProps) => JSX.Element;
  nav?: "main" | "admin";
  under?: string;
  public?: boolean;
}

const route = (path: string, title: string, page: RouteDef["page"], more: Partial<RouteDef> = {}): RouteDef => ({
  ...compile(path),
  title,
  page,
  ...more,
});

export const ROUTES: readonly RouteDef[] = [
  route("/", "Overview", Overview, { nav: "main" }),
  route("/runs", "Runs", RunsPage, { nav: "main" }),
  route("/runs/:id", "Run", RunPage),
  route("/agents", "Agents", AgentsPage, { nav: "main" }),
  route("/agents/:id", "Agent", AgentPage),
  route("/projects", "Coding agents", ProjectsPage, { nav: "main" }),
  route("/projects/:id", "Project", ProjectPage, { under: "/projects" }),
  route("/machines", "Machines", MachinesPage, { under: "/projects" }),
  route("/machines/:id", "Machine", MachinePage, { under: "/projects" }),
  route("/workspaces/:id", "Workspace", WorkspacePage, { under: "/projects" }),
  route("/sessions", "Sessions", SessionsPage, { under: "/projects" }),
  route("/sessions/:id", "Session", SessionPage, { under: "/projects" }),
  route("/cost", "Cost", CostPage, { nav: "main" }),
  route("/alerts", "Alerts", AlertsPage, { nav: "main" }),
  route("/alerts/:id", "Alert", AlertPage),
  route("/admin/keys", "API keys", KeysPage, { nav: "admin" }),
  route("/admin/budgets", "Budgets", BudgetsPage, { nav: "admin" }),
  route("/admin/rules", "Alert rules", RulesPage, { nav: "admin" }),
  route("/admin/channels", "Channels", ChannelsPage, { nav: "admin" }),
  route("/admin/policies", "Policies", PoliciesPage, { nav: "admin" }),
  route("/admin/prices", "Prices", PricesPage, { nav: "admin" }),
  route("/admin/members", "Members", MembersPage, { nav: "admin" }),
  route("/accept-invitation", "Accept invitation", AcceptInvitation, { public: true }),
];

export const NAV = ROUTES.filter((r) => r.nav === "main");
export const ADMIN_NAV = ROUTES.filter((r) => r.nav === "admin");
