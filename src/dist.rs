//! Man pages and shell completions generated from a binary's clap definition, for the
//! Debian package (packaging/build-deb.sh runs `tollgate generate-dist DIR` and
//! `tollgate-load generate-dist DIR`).
//!
//! Generated from the live `clap::Command`, so a subcommand someone adds appears in the
//! man pages and completions without touching this file. `generate-dist` itself is not a
//! clap subcommand: [`main_hook`] intercepts it before parsing, so it appears in no help,
//! man page or completion (clap_complete offers even hidden subcommands), and each
//! binary's `main` needs one line, not a new variant.

use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// The argv[1] that asks a binary for its man pages and completions.
pub const SUBCOMMAND: &str = "generate-dist";

/// Call first in `main`: with `generate-dist DIR` as arguments, writes `C`'s man pages
/// and completions under DIR and returns the exit code; otherwise `None` (parse as usual).
pub fn main_hook<C: clap::CommandFactory>() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_none_or(|a| a != SUBCOMMAND) {
        return None;
    }
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: {SUBCOMMAND} DIR");
        return Some(std::process::ExitCode::from(2));
    };
    Some(match generate(C::command(), Path::new(&dir)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}: {e}", Path::new(&dir).display());
            std::process::ExitCode::FAILURE
        }
    })
}

/// Writes `DIR/man/NAME.1` and one `NAME-SUB.1` per visible subcommand, and
/// `DIR/completions/{bash,zsh,fish}/…` under the names each shell looks up.
/// Returns the files written.
pub fn generate(cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let undocumented = undocumented(&cmd);
    if !undocumented.is_empty() {
        // A man page's NAME line is its one-line description (whatis, apropos).
        return Err(io::Error::other(format!(
            "subcommands without a description (a `///` line on the variant): {}",
            undocumented.join(", ")
        )));
    }
    let man = dir.join("man");
    std::fs::create_dir_all(&man)?;
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    man_pages(&cmd, &man, source.trim_end())?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(&man)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    let name = cmd.get_name().to_string();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let out = dir.join("completions").join(shell.to_string());
        std::fs::create_dir_all(&out)?;
        let mut cmd = cmd.clone();
        written.push(clap_complete::generate_to(shell, &mut cmd, &name, &out)?);
    }
    written.sort();
    Ok(written)
}

/// One page per visible command, each footed with the program's name and version.
fn man_pages(cmd: &clap::Command, out: &Path, source: &str) -> io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, out, source)?;
    }
    clap_mangen::Man::new(cmd.clone())
        .source(source)
        .manual("tollgate manual")
        .generate_to(out)
        .map(drop)
}

/// Visible commands with no `about`, by display name (`tollgate-sessions-list`).
fn undocumented(cmd: &clap::Command) -> Vec<String> {
    let mut missing: Vec<String> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .flat_map(undocumented)
        .collect();
    if cmd.get_about().is_none() {
        missing.insert(
            0,
            cmd.get_display_name().unwrap_or(cmd.get_name()).to_string(),
        );
    }
    missing
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_and_completions_cover_every_subcommand() {
        let cmd = clap::Command::new("demo")
            .version("1.2.3")
            .about("A demo")
            .subcommand(clap::Command::new("check").about("Check it"));
        let dir = tempfile::tempdir().unwrap();
        let files = generate(cmd, dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "completions/bash/demo.bash",
                "completions/fish/demo.fish",
                "completions/zsh/_demo",
                "man/demo-check.1",
                "man/demo.1",
            ]
        );
        let man = std::fs::read_to_string(dir.path().join("man/demo.1")).unwrap();
        assert!(man.contains("demo\\-check"), "{man}");
        let page = std::fs::read_to_string(dir.path().join("man/demo-check.1")).unwrap();
        assert!(page.contains("demo\\-check \\- Check it"), "{page}");
        assert!(page.contains("demo 1.2.3"), "{page}");
        let bash = std::fs::read_to_string(dir.path().join("completions/bash/demo.bash")).unwrap();
        assert!(bash.contains("demo,check"), "{bash}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod undocumented_tests {
    use super::*;

    #[test]
    fn a_subcommand_without_a_description_is_refused_by_name() {
        let cmd = clap::Command::new("demo").about("A demo").subcommand(
            clap::Command::new("sessions")
                .about("Sessions")
                .subcommand(clap::Command::new("list")),
        );
        let dir = tempfile::tempdir().unwrap();
        let e = generate(cmd, dir.path()).unwrap_err().to_string();
        assert!(e.contains("demo-sessions-list"), "{e}");
        assert!(!dir.path().join("man").exists());
    }
}
