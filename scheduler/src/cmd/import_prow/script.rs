//! The bash script of a Prow image-mirroring job, as far as it is understood: the
//! `for mapping in /etc/imagemirror/PREFIX*` loop, the `attempts=` retries, the flags of
//! each `oc image mirror` call, and the digest-tag idiom. Any other line is reported, never
//! guessed.

/// What a job's bash script does, as far as it is understood.
#[derive(Debug)]
pub(crate) struct Script {
    /// The mapping files' prefix, from the `for mapping in` loop.
    pub prefix: Option<String>,
    pub keep_manifest_list: bool,
    pub continue_on_error: bool,
    pub max_per_registry: Option<usize>,
    /// Tries of each mapping file (`attempts=`).
    pub tries: u32,
    /// The digest-tag idiom, whole.
    pub digest_tag: bool,
    /// False when a line was not understood (then the job gets no group).
    pub understood: bool,
    /// What was not understood, or what an operator must know.
    pub notes: Vec<String>,
}

/// Script lines that do nothing a group has to say: the loop's bookkeeping.
const PLUMBING: [&str; 11] = [
    "set -o errexit",
    "failures=0",
    "failures=$((failures+1))",
    "fi",
    "done",
    "break",
    "exit $failures",
    "for attempt in $( seq $attempts ); do",
    "if [[ $attempt -eq $attempts ]]; then",
    "if [ ! -s \"${mapping}\" ]; then continue; fi",
    "cp ~/.docker/config.json /tmp/config.json",
];

/// The lines of the "also push a tag of the digest's first 12 hex digits" idiom.
const DIGEST_TAG: [&str; 5] = [
    "ciimage=$(cat ${mapping} | cut -d ' ' -f1)",
    "quayimage=$(cat ${mapping} | cut -d ' ' -f2)",
    "digest=$(oc image info ${ciimage} | grep 'Digest:' | tr -d ' ' | cut -d ':' -f2-)",
    "shorttag=$(echo ${digest} | cut -d: -f2 | grep -oP '^.{12}')",
    "quayimageshort=${quayimage/:*/:${shorttag}}",
];

impl Script {
    /// Reads the script line by line; see [`Script::understood`] and [`Script::notes`].
    pub(crate) fn parse(script: &str) -> Script {
        let mut s = Script {
            prefix: None,
            keep_manifest_list: true,
            continue_on_error: false,
            max_per_registry: None,
            tries: 1,
            digest_tag: false,
            understood: true,
            notes: Vec::new(),
        };
        let mut keeps = Vec::new();
        let mut digest_lines = 0;
        for (n, raw) in script.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("echo ") {
                continue;
            }
            if PLUMBING.contains(&line) {
                continue;
            }
            if DIGEST_TAG.contains(&line) {
                digest_lines += 1;
                continue;
            }
            s.line(n, line, &mut keeps);
        }
        s.digest_tag = digest_lines == DIGEST_TAG.len();
        if digest_lines > 0 && !s.digest_tag {
            s.understood = false;
            s.notes
                .push("part of the digest-tag idiom only: not translated".into());
        }
        s.settle_keep_manifest_list(&keeps);
        s
    }

    /// One line that says something (line `n`, counted from 0): the registry login, the
    /// loop, the attempts, or an `oc image mirror` call, whose --keep-manifest-list goes to
    /// `keeps`.
    fn line(&mut self, n: usize, line: &str, keeps: &mut Vec<bool>) {
        if line == "oc registry login --to /tmp/config.json" {
            self.notes.push("logs in to the cluster's own registry (pull access to the CI registry): give the workers those credentials with -a".into());
            return;
        }
        if let Some(rest) = line.strip_prefix("for mapping in /etc/imagemirror/") {
            match rest.strip_suffix("*; do") {
                Some(p) if !p.contains(['*', '/', ' ']) => self.prefix = Some(p.to_string()),
                _ => self.unknown(n, line),
            }
            return;
        }
        if let Some(a) = line.strip_prefix("attempts=") {
            match a.parse() {
                Ok(t) => self.tries = t,
                Err(_) => self.unknown(n, line),
            }
            return;
        }
        match oc_mirror_flags(line) {
            Some(flags) => {
                if !self.flags(&flags, keeps) {
                    self.unknown(n, line);
                }
            }
            None => self.unknown(n, line),
        }
    }

    /// --keep-manifest-list as every `oc image mirror` call of the script gives it (`keeps`):
    /// all with it or all without; a mix is not translated.
    fn settle_keep_manifest_list(&mut self, keeps: &[bool]) {
        match (keeps.iter().all(|k| *k), keeps.iter().any(|k| *k)) {
            (true, _) => self.keep_manifest_list = true,
            (false, false) => self.keep_manifest_list = false,
            (false, true) => {
                self.understood = false;
                self.notes.push(
                    "`oc image mirror` runs with and without --keep-manifest-list: not translated"
                        .into(),
                );
            }
        }
    }

    fn unknown(&mut self, n: usize, line: &str) {
        self.understood = false;
        self.notes.push(format!(
            "script line {} not understood, so not translated: {line}",
            n + 1
        ));
    }

    /// Takes the flags of one `oc image mirror`; false when one is not understood.
    fn flags(&mut self, flags: &[&str], keeps: &mut Vec<bool>) -> bool {
        let mut keep = false;
        let mut from_file = false;
        for f in flags {
            match *f {
                "--keep-manifest-list" => keep = true,
                "--skip-multiple-scopes" => {}
                "--continue-on-error" => self.continue_on_error = true,
                "-a" | "/tmp/config.json" => {}
                "${ciimage}=${quayimageshort}" => {}
                f if f.starts_with("-f=") && f.contains("mapping") => from_file = true,
                f => match f.strip_prefix("--max-per-registry=").map(str::parse) {
                    Some(Ok(n)) => self.max_per_registry = Some(n),
                    _ => return false,
                },
            }
        }
        if from_file {
            keeps.push(keep);
        }
        true
    }
}

/// The flags of an `oc image mirror` call written as `if [!] oc image mirror ...; then`.
fn oc_mirror_flags(line: &str) -> Option<Vec<&str>> {
    let call = line
        .strip_prefix("if ! ")
        .or_else(|| line.strip_prefix("if "))?
        .strip_suffix("; then")?
        .strip_prefix("oc image mirror ")?;
    Some(call.split_whitespace().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_line_it_does_not_know_is_reported_not_guessed() {
        let s = Script::parse(
            "for mapping in /etc/imagemirror/mapping_x*; do\n  skopeo sync --all $mapping\ndone\n",
        );
        assert!(!s.understood);
        assert_eq!(
            s.notes,
            ["script line 2 not understood, so not translated: skopeo sync --all $mapping"]
        );
        let s = Script::parse("for mapping in /etc/imagemirror/mapping_x*; do\nif ! oc image mirror --keep-manifest-list -f=\"$mapping\" --insecure=true; then\nfi\ndone\n");
        assert!(!s.understood, "{s:?}");
    }
}
