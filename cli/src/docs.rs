//! Shell completions and man pages, generated from the command line itself so they never
//! drift from it: `completions bash|zsh|fish|elvish|powershell` prints a script on stdout,
//! `man DIR` writes one page per command (`mirror-worker.1`, `mirror-worker-copy.1`, ...).
//! An install script runs both.

use std::path::PathBuf;

use clap::Args;

/// Flags of `completions`.
#[derive(Args, Clone, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: clap_complete::Shell,
}

impl CompletionsArgs {
    /// Prints the completion script of `cmd` on stdout.
    pub fn print(&self, cmd: clap::Command) {
        print!("{}", self.script(cmd));
    }

    /// The completion script of `cmd`.
    pub fn script(&self, mut cmd: clap::Command) -> String {
        let name = cmd.get_name().to_string();
        let mut out = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, name.clone(), &mut out);
        let script = String::from_utf8_lossy(&out).into_owned();
        match self.shell {
            clap_complete::Shell::Bash => bash_hyphenated_name(&script, &name),
            _ => script,
        }
    }
}

/// Works around clap-rs/clap#6421: for a binary whose name has a hyphen, clap_complete's
/// bash script tracks the command as `mirror__scheduler__subcmd__run` (the binary's hyphen
/// as `__`) but names the `case` branches `mirror__subcmd__scheduler__subcmd__run` (as a
/// subcommand's hyphen), so that nothing after the first word completes. The branches are
/// renamed to what the tracking produces.
fn bash_hyphenated_name(script: &str, name: &str) -> String {
    if !name.contains('-') {
        return script.to_string();
    }
    let wrong = format!("{}__", name.replace('-', "__subcmd__"));
    let right = format!("{}__", name.replace('-', "__"));
    script.replace(&wrong, &right)
}

/// Flags of `man`.
#[derive(Args, Clone, Debug)]
pub struct ManArgs {
    /// Directory to write the pages into (created when missing), e.g.
    /// /usr/local/share/man/man1.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

impl ManArgs {
    /// Writes a page for `cmd` and each of its subcommands; returns the files written.
    pub fn write(&self, cmd: clap::Command) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(&self.dir)?;
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        let mut written = Vec::new();
        write_pages(cmd, &self.dir, &mut written)?;
        Ok(written)
    }
}

fn write_pages(
    cmd: clap::Command,
    dir: &std::path::Path,
    written: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir, written)?;
    }
    written.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    /// A command with a subcommand that has one of its own.
    #[derive(Parser)]
    #[command(name = "tool", about = "A tool")]
    struct Tool {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Subcommand)]
    enum Sub {
        /// Does one thing.
        One {
            #[command(subcommand)]
            inner: Inner,
        },
    }

    #[derive(Subcommand)]
    enum Inner {
        /// Does the inner thing.
        Deep,
    }

    #[test]
    fn man_writes_one_page_per_command() {
        let dir = tempfile::tempdir().unwrap();
        let man = ManArgs {
            dir: dir.path().join("man1"),
        };
        let mut names: Vec<String> = man
            .write(Tool::command())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["tool-one-deep.1", "tool-one.1", "tool.1"]);
        let page = std::fs::read_to_string(dir.path().join("man1/tool-one.1")).unwrap();
        assert!(page.contains("Does one thing"), "{page}");
    }
}
