// `sqlx::migrate!` embeds runtime/migrations at compile time; rebuild when a
// migration is added, not only when an embedded one changes.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
