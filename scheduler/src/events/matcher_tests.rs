//! The matcher over real mapping files on disk: exact tags, globs, tag-less sources,
//! digest sources never; the later file wins; files read again when they change.

use std::sync::Arc;

use mirror_common::copy::CopyOptions;
use mirror_common::job_options::JobOptions;

use super::*;

fn stamp(group: &str) -> Stamp {
    Stamp {
        credentials: Some(format!("{group}-push")),
        options: JobOptions::of(&CopyOptions::default()),
        group: Some(group.to_string()),
        digest_tag: false,
    }
}

fn matcher(routes: Vec<(&str, Vec<PathBuf>)>) -> Matcher {
    let routes: Vec<Route> = routes
        .into_iter()
        .map(|(g, files)| Route {
            group: Some(g.to_string()),
            files,
            stamp: stamp(g),
        })
        .collect();
    let mut m = Matcher::new(Arc::new(move || Ok(routes.clone())));
    m.refresh(Instant::now());
    m
}

fn destinations(hits: &[Hit]) -> Vec<(String, String)> {
    hits.iter()
        .flat_map(|h| {
            h.destinations.iter().map(|(d, o)| {
                let origin = o.rsplit('/').next().unwrap_or(o).to_string();
                (d.to_string(), origin)
            })
        })
        .collect()
}

fn image(s: &str) -> ImageRef {
    ImageRef::parse(s).unwrap()
}

const DIGEST: &str = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf";

#[test]
fn exact_glob_and_tagless_sources_select_the_tag_digest_sources_never() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("mapping_a");
    std::fs::write(
        &a,
        format!(
            "src.io/team/app:1.0 dst.io/m/app:1.0 dst.io/m/app:stable\n\
             src.io/team/app:1.* dst.io/glob/app\n\
             src.io/team/app dst.io/all/app\n\
             src.io/team/app:2.* dst.io/other/app\n\
             src.io/team/app@{DIGEST} dst.io/pinned/app:1.0\n\
             src.io/team/other:1.0 dst.io/m/other:1.0\n"
        ),
    )
    .unwrap();
    let m = matcher(vec![("g", vec![a])]);
    let hits = m.matches(&image("src.io/team/app:1.0"));
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].stamp.credentials.as_deref(), Some("g-push"));
    assert_eq!(
        destinations(&hits),
        [
            ("dst.io/m/app:1.0".to_string(), "mapping_a:1".to_string()),
            ("dst.io/m/app:stable".into(), "mapping_a:1".into()),
            ("dst.io/glob/app:1.0".into(), "mapping_a:2".into()),
            ("dst.io/all/app:1.0".into(), "mapping_a:3".into()),
        ]
    );
    assert_eq!(
        destinations(&m.matches(&image("src.io/team/app:2.5"))),
        [
            ("dst.io/all/app:2.5".to_string(), "mapping_a:3".to_string()),
            ("dst.io/other/app:2.5".into(), "mapping_a:4".into()),
        ]
    );
    assert!(m.matches(&image("other.io/team/app:1.0")).is_empty());
    assert!(m.matches(&image("src.io/team/app")).is_empty());
}

#[test]
fn every_group_is_matched_the_later_file_wins_rejected_files_give_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let a1 = write("mapping_a_1", "src.io/t/app:v1 dst.io/m/app:v1\n");
    let a2 = write("mapping_a_2", "src.io/t/app:v* dst.io/m/app\n");
    let bad = write("mapping_a_3", "src.io/t/app:v1 src.io/t/app:v1\n");
    let b = write("mapping_b", "src.io/t/app:v1 dst.io/b/app:v1\n");
    let m = matcher(vec![("a", vec![a1, a2, bad]), ("b", vec![b])]);
    let hits = m.matches(&image("src.io/t/app:v1"));
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].stamp.group.as_deref(), Some("b"));
    assert_eq!(
        destinations(&hits),
        [
            ("dst.io/m/app:v1".to_string(), "mapping_a_2:1".to_string()),
            ("dst.io/b/app:v1".into(), "mapping_b:1".into()),
        ]
    );
}

#[test]
fn changed_files_are_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("mapping_a");
    std::fs::write(&a, "src.io/t/app:v1 dst.io/m/app:v1\n").unwrap();
    let mut m = matcher(vec![("a", vec![a.clone()])]);
    assert!(m.matches(&image("src.io/t/app:v2")).is_empty());
    std::fs::write(
        &a,
        "src.io/t/app:v1 dst.io/m/app:v1\nsrc.io/t/app:v2 dst.io/m/app:v2\n",
    )
    .unwrap();
    // Not looked at again within CHECK_EVERY.
    m.refresh(Instant::now());
    let later = Instant::now() + CHECK_EVERY;
    m.refresh(later);
    assert_eq!(
        destinations(&m.matches(&image("src.io/t/app:v2"))),
        [("dst.io/m/app:v2".to_string(), "mapping_a:2".to_string())]
    );
}
