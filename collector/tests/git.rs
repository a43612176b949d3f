//! Remote URL normalization and git root discovery (no git binary).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use agentops_collector::git::{git_root, normalize_remote, origin_url, place_of};

#[test]
fn remote_urls_normalize() {
    let table = [
        ("git@github.com:Acme/Repo.git", Some("github.com/acme/repo")),
        ("https://github.com/acme/repo", Some("github.com/acme/repo")),
        (
            "https://github.com/acme/repo/",
            Some("github.com/acme/repo"),
        ),
        (
            "ssh://git@github.com/acme/repo.git",
            Some("github.com/acme/repo"),
        ),
        (
            "ssh://git@github.com:22/acme/repo.git",
            Some("github.com/acme/repo"),
        ),
        (
            "https://user:s3cret@GitHub.com/Acme/Repo.git",
            Some("github.com/acme/repo"),
        ),
        (
            "https://github.com:443/acme/repo.git",
            Some("github.com/acme/repo"),
        ),
        (
            "git://github.com/acme/repo.git",
            Some("github.com/acme/repo"),
        ),
        (
            "git+ssh://git@github.com/acme/repo.git",
            Some("github.com/acme/repo"),
        ),
        (
            "http://gitlab.example.com:8080/group/sub/repo.git",
            Some("gitlab.example.com:8080/group/sub/repo"),
        ),
        (
            "git@gitlab.com:group/sub/Repo.git",
            Some("gitlab.com/group/sub/repo"),
        ),
        (
            "https://dev.azure.com/org/proj/_git/repo",
            Some("dev.azure.com/org/proj/_git/repo"),
        ),
        (
            "  git@github.com:acme/repo.git\n",
            Some("github.com/acme/repo"),
        ),
        ("/srv/git/repo.git", None),
        ("../other/repo", None),
        ("file:///srv/git/repo.git", None),
        ("C:\\src\\repo", None),
        ("", None),
    ];
    for (url, want) in table {
        assert_eq!(normalize_remote(url).as_deref(), want, "{url:?}");
    }
}

#[test]
fn origin_is_read_from_git_config() {
    let cfg = r#"
[core]
	repositoryformatversion = 0
[remote "upstream"]
	url = https://github.com/upstream/repo.git
[remote "origin"]
	url = git@github.com:Acme/Repo.git
	fetch = +refs/heads/*:refs/remotes/origin/*
[branch "main"]
	remote = origin
"#;
    assert_eq!(
        origin_url(cfg).as_deref(),
        Some("git@github.com:Acme/Repo.git")
    );
    let no_origin = "[remote \"fork\"]\n\turl = https://github.com/me/repo\n";
    assert_eq!(
        origin_url(no_origin).as_deref(),
        Some("https://github.com/me/repo")
    );
    assert_eq!(origin_url("[core]\n\tbare = false\n"), None);
}

#[test]
fn git_root_dir_and_worktree_file() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("acme");
    std::fs::create_dir_all(repo.join(".git/worktrees/wt")).unwrap();
    std::fs::write(
        repo.join(".git/config"),
        "[remote \"origin\"]\n\turl = git@github.com:Acme/Repo.git\n",
    )
    .unwrap();
    std::fs::create_dir_all(repo.join("src/deep")).unwrap();
    let (root, gitdir) = git_root(&repo.join("src/deep")).unwrap();
    assert_eq!(root, repo);
    assert_eq!(gitdir, repo.join(".git"));

    // A worktree: `.git` is a file pointing at .git/worktrees/wt, whose
    // `commondir` leads back to the main .git (where the config is).
    let wt = tmp.path().join("acme-wt");
    std::fs::create_dir_all(wt.join("sub")).unwrap();
    std::fs::write(
        wt.join(".git"),
        format!("gitdir: {}\n", repo.join(".git/worktrees/wt").display()),
    )
    .unwrap();
    std::fs::write(repo.join(".git/worktrees/wt/commondir"), "../..\n").unwrap();
    let (root, _) = git_root(&wt.join("sub")).unwrap();
    assert_eq!(root, wt);

    let a = place_of("m1", &repo.join("src").to_string_lossy(), None);
    let b = place_of("m1", &wt.join("sub").to_string_lossy(), None);
    assert_eq!(a.project, "github.com/acme/repo");
    assert_eq!(b.project, "github.com/acme/repo");
    assert_eq!(
        a.project_url.as_deref(),
        Some("https://github.com/acme/repo")
    );
    assert_eq!(a.workspace_path, repo.to_string_lossy());
    assert_eq!(b.workspace_path, wt.to_string_lossy());
    assert_ne!(a.workspace, b.workspace);
    // Stable, and per machine.
    assert_eq!(
        a.workspace,
        place_of("m1", &repo.to_string_lossy(), None).workspace
    );
    assert_ne!(
        a.workspace,
        place_of("m2", &repo.to_string_lossy(), None).workspace
    );

    // No repository: local:<dir name>; the agent's remote hint when given.
    let plain = tmp.path().join("scratch");
    std::fs::create_dir_all(&plain).unwrap();
    let p = place_of("m1", &plain.to_string_lossy(), None);
    assert_eq!(p.project, "local:scratch");
    assert_eq!(p.project_url, None);
    let h = place_of(
        "m1",
        &plain.to_string_lossy(),
        Some("https://github.com/acme/other.git"),
    );
    assert_eq!(h.project, "github.com/acme/other");
    // A repository without a remote.
    let lonely = tmp.path().join("lonely");
    std::fs::create_dir_all(lonely.join(".git")).unwrap();
    assert_eq!(
        place_of("m1", &lonely.to_string_lossy(), None).project,
        "local:lonely"
    );
}
