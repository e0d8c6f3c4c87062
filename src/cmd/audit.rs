//! `ldnote link --audit[=PATH]` / `LDNOTE_AUDIT`: name the rtld-audit module (audit/) in the
//! program's `DT_AUDIT`, so that a stock glibc (>= 2.32) loads it at start-up and the note pays
//! off without a patched loader.
//!
//! Security: a `DT_AUDIT` path is code that runs inside the program, before `main`, with its
//! privileges. So the path must be absolute (a relative one would be found from the CWD of
//! whoever runs the program) and neither the module nor any directory on the way to it may be
//! writable by other users (group or world), except a sticky directory (`/tmp`) whose entry is
//! ours or root's; with `--immutable-prefix` it must also lie under one of those prefixes. glibc
//! itself ignores a `DT_AUDIT` path with a `/` in secure-execution mode (set-user-ID programs,
//! rtld.c `dso_name_valid_for_suid`): such a program then runs exactly as stock.
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ldnote::argv::{LinkPlan, ToolKind};

use super::Failure;

/// File name of the module as installed beside `ldnote`.
pub const MODULE: &str = "libldnote-audit.so";

/// The module path asked for: `--audit=PATH`, `--audit` (the installed one), else
/// `LDNOTE_AUDIT` (`1` = the installed one, an absolute path, `0` or empty = none).
pub fn requested(opt: Option<&Option<OsString>>) -> Option<Option<OsString>> {
    if let Some(o) = opt {
        return Some(o.clone());
    }
    super::options::env().audit.clone()
}

/// The installed module: beside the `ldnote` executable, or in `../lib/` from it.
pub fn installed() -> Result<PathBuf, Failure> {
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map_err(|e| Failure(format!("--audit: cannot locate ldnote itself: {e}")))?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let candidates = [dir.join(MODULE), dir.join("../lib").join(MODULE)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .ok_or_else(|| {
            Failure(format!(
                "--audit: no {MODULE} beside {} or in its ../lib (build it with audit/build.sh, or give --audit=PATH)",
                exe.display()
            ))
        })
}

/// Why `path` must not become a `DT_AUDIT` entry, if it must not. `root` is the sysroot the
/// path is looked up in (the program's filesystem), `immutable` the `--immutable-prefix` list.
pub fn unsafe_reason(path: &[u8], root: &Path, immutable: &[OsString]) -> Option<String> {
    if !path.starts_with(b"/") {
        return Some(
            "not an absolute path (it would be looked up from the program's working directory)"
                .into(),
        );
    }
    if path.contains(&b':') {
        return Some("contains `:` (the loader splits DT_AUDIT at colons)".into());
    }
    if !immutable.is_empty()
        && !immutable.iter().any(|p| {
            let p = p.as_bytes().strip_suffix(b"/").unwrap_or(p.as_bytes());
            path.starts_with(p) && matches!(path.get(p.len()), None | Some(b'/'))
        })
    {
        return Some("not under an --immutable-prefix".into());
    }
    if path.split(|b| *b == b'/').any(|c| c == b"..") {
        return Some("contains `..`".into());
    }
    let host = root.join(OsStr::from_bytes(&path[1..]));
    let meta = match std::fs::metadata(&host) {
        Ok(m) => m,
        Err(e) => return Some(format!("{}: {e}", host.display())),
    };
    if !meta.is_file() {
        return Some(format!("{} is not a regular file", host.display()));
    }
    // The path as given (symlinks as the loader meets them) and its resolved form.
    let mut paths = vec![host.clone()];
    if let Ok(c) = std::fs::canonicalize(&host) {
        paths.push(c);
    }
    let me = rustix_uid();
    for p in &paths {
        if let Some(why) = writable_by_others(p, me) {
            return Some(why);
        }
    }
    None
}

fn rustix_uid() -> u32 {
    // The effective user: files of this user or root may hold the module.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

/// The first of `p` and its ancestors that another user could change.
fn writable_by_others(p: &Path, me: u32) -> Option<String> {
    let mut child_owner: Option<u32> = None;
    let mut cur = Some(p);
    while let Some(c) = cur {
        let Ok(m) = std::fs::symlink_metadata(c) else {
            return Some(format!("{}: cannot be examined", c.display()));
        };
        let owner_ok = m.uid() == 0 || m.uid() == me;
        let group_other_write = m.mode() & 0o022 != 0;
        let sticky = m.mode() & 0o1000 != 0;
        let is_link = m.file_type().is_symlink();
        if !owner_ok {
            return Some(format!(
                "{} belongs to another user (uid {})",
                c.display(),
                m.uid()
            ));
        }
        // A symlink's own mode means nothing; a sticky directory protects entries it does not own.
        let child_safe = sticky && child_owner.is_some_and(|u| u == 0 || u == me);
        if group_other_write && !is_link && !child_safe {
            return Some(format!("{} is writable by other users", c.display()));
        }
        child_owner = Some(m.uid());
        cur = c.parent();
    }
    None
}

/// The arguments that add `DT_AUDIT path` to the link, or why none can be added.
pub fn args(
    plan: &LinkPlan,
    tool: &OsStr,
    args: &[OsString],
    path: &OsStr,
) -> Result<Vec<OsString>, Failure> {
    if !ldnote::argv::decide::runs_gnu_ld(tool, args, plan.kind) {
        return Err(Failure(
            "--audit: only GNU ld writes DT_AUDIT (gold, lld and mold have no such option); the program is linked without it (use LD_AUDIT)".into(),
        ));
    }
    Ok(match plan.kind {
        ToolKind::Linker => vec![OsString::from("--audit"), path.to_os_string()],
        ToolKind::Driver => {
            let mut a = b"-Wl,--audit,".to_vec();
            a.extend_from_slice(path.as_bytes());
            vec![OsString::from_vec(a)]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn unsafe_paths_are_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let ok = d.path().join("ok");
        std::fs::create_dir(&ok).expect("mkdir");
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let m = ok.join(MODULE);
        std::fs::write(&m, b"x").expect("write");
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let root = Path::new("/");
        let mb = m.as_os_str().as_bytes();
        assert_eq!(unsafe_reason(mb, root, &[]), None);
        assert!(unsafe_reason(b"rel/x.so", root, &[]).is_some());
        assert!(unsafe_reason(mb, root, &[OsString::from("/nix/store")]).is_some());
        assert_eq!(
            unsafe_reason(mb, root, &[d.path().as_os_str().to_os_string()]),
            None
        );
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(unsafe_reason(mb, root, &[])
            .expect("refused")
            .contains("writable by other users"));
        std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o664)).expect("chmod");
        assert!(unsafe_reason(mb, root, &[]).is_some());
        assert!(unsafe_reason(b"/nonexistent/x.so", root, &[]).is_some());
    }
}
