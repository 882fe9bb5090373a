//! Table tests of the grouping of registry-level singletons by target.

use super::*;

/// An object: its name and the target it names.
type Obj = (&'static str, Option<&'static str>);

/// (what, active, deleting, expected groups: target, active names, deleting names).
type Case = (
    &'static str,
    Vec<Obj>,
    Vec<Obj>,
    Vec<(Option<&'static str>, Vec<&'static str>, Vec<&'static str>)>,
);

#[test]
fn group_table() {
    let cases: Vec<Case> = vec![
        ("no object, no group", vec![], vec![], vec![]),
        (
            "own registry only: one group, order kept",
            vec![("b", None), ("a", None)],
            vec![],
            vec![(None, vec!["b", "a"], vec![])],
        ),
        (
            "own registry first, then targets by name, each in object order",
            vec![
                ("x", Some("t2")),
                ("y", None),
                ("z", Some("t1")),
                ("w", Some("t2")),
            ],
            vec![],
            vec![
                (None, vec!["y"], vec![]),
                (Some("t1"), vec!["z"], vec![]),
                (Some("t2"), vec!["x", "w"], vec![]),
            ],
        ),
        (
            "a target with only a deleting object still has its group (its document is cleared)",
            vec![("a", None)],
            vec![("gone", Some("t1"))],
            vec![
                (None, vec!["a"], vec![]),
                (Some("t1"), vec![], vec!["gone"]),
            ],
        ),
        (
            "active and deleting of one target share the group",
            vec![("a", Some("t1"))],
            vec![("b", Some("t1")), ("c", None)],
            vec![
                (None, vec![], vec!["c"]),
                (Some("t1"), vec!["a"], vec!["b"]),
            ],
        ),
    ];
    for (what, active, deleting, expected) in cases {
        let arc = |v: Vec<Obj>| v.into_iter().map(Arc::new).collect::<Vec<_>>();
        let groups = group_by_target(arc(active), arc(deleting), |o: &Obj| o.1);
        let names = |v: &[Arc<Obj>]| v.iter().map(|o| o.0).collect::<Vec<_>>();
        let got: Vec<_> = groups
            .iter()
            .map(|g| (g.target.as_deref(), names(&g.active), names(&g.deleting)))
            .collect();
        assert_eq!(got, expected, "{what}");
    }
}

#[test]
fn every_object_lands_in_the_group_of_its_target() {
    let active: Vec<Arc<Obj>> = [("a", Some("t")), ("b", None), ("c", Some("u"))]
        .into_iter()
        .map(Arc::new)
        .collect();
    let groups = group_by_target(active, vec![], |o: &Obj| o.1);
    for g in &groups {
        assert!(g.active.iter().all(|o| o.1 == g.target.as_deref()));
    }
    assert_eq!(groups.iter().map(|g| g.active.len()).sum::<usize>(), 3);
}
