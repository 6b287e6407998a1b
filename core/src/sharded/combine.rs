//! The service's combined topics: `v2.users.{id}.presence` and `v2.users.{id}.routingStatus`
//! subscribed as one `v2.users.{id}?presence&routingStatus` (at most 200 characters), which
//! the service delivers under each part's own name.

use crate::types::{Topic, MAX_TOPIC_LEN};

/// A topic's prefix and last part, if it can be combined with others of its prefix.
pub(super) fn split(t: &Topic) -> Option<(&str, &str)> {
    let s = t.as_str();
    if s.contains(['?', '&']) {
        return None;
    }
    let (prefix, last) = s.rsplit_once('.')?;
    // `v2.users` alone names no entity: a combined id needs `v2.{kind}.{id}` at least.
    (prefix.matches('.').count() >= 2).then_some((prefix, last))
}

/// What the session subscribes to for `topics`: each entry is a topic sent to the service and,
/// for a combined one, the application's topics it stands for (empty for a topic sent as it
/// is). Topics of one prefix are combined in order, as many per id as 200 characters hold.
pub(super) fn wire<'a>(topics: impl Iterator<Item = &'a Topic>) -> Vec<(Topic, Vec<Topic>)> {
    let mut combinable: Vec<(&str, &str, &Topic)> = Vec::new();
    let mut out = Vec::new();
    for t in topics {
        match split(t) {
            Some((prefix, last)) => combinable.push((prefix, last, t)),
            None => out.push((t.clone(), Vec::new())),
        }
    }
    combinable.sort_unstable();
    let mut rest = combinable.as_slice();
    while let Some(&(prefix, _, _)) = rest.first() {
        let n = rest.iter().take_while(|(p, _, _)| *p == prefix).count();
        let (group, after) = rest.split_at(n);
        rest = after;
        let mut chunk: Vec<(&str, &Topic)> = Vec::new();
        let mut len = prefix.len();
        for &(_, last, t) in group {
            if !chunk.is_empty() && len + 1 + last.len() > MAX_TOPIC_LEN {
                close(prefix, std::mem::take(&mut chunk), &mut out);
                len = prefix.len();
            }
            len += 1 + last.len();
            chunk.push((last, t));
        }
        close(prefix, chunk, &mut out);
    }
    out
}

/// One entry from `chunk`: the topic itself when alone, a combined id otherwise.
fn close(prefix: &str, chunk: Vec<(&str, &Topic)>, out: &mut Vec<(Topic, Vec<Topic>)>) {
    if let [(_, t)] = chunk.as_slice() {
        out.push(((*t).clone(), Vec::new()));
        return;
    }
    let mut id = String::from(prefix);
    for (i, (last, _)) in chunk.iter().enumerate() {
        id.push(if i == 0 { '?' } else { '&' });
        id.push_str(last);
    }
    let parts: Vec<Topic> = chunk.iter().map(|(_, t)| (*t).clone()).collect();
    match Topic::new(id) {
        Ok(combined) => out.push((combined, parts)),
        // Cannot happen for valid parts within 200 characters; if it did, each goes alone.
        Err(_) => out.extend(parts.into_iter().map(|t| (t, Vec::new()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    #[test]
    fn parts_of_one_prefix_combine_and_others_go_alone() {
        let topics = [
            t("v2.users.a.presence"),
            t("v2.users.a.routingStatus"),
            t("v2.users.b.presence"),
            t("v2.routing.queues.q.conversations"),
        ];
        let w = wire(topics.iter());
        let names: Vec<&str> = w.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "v2.routing.queues.q.conversations",
                "v2.users.a?presence&routingStatus",
                "v2.users.b.presence"
            ]
        );
        assert_eq!(w[1].1, vec![topics[0].clone(), topics[1].clone()]);
        assert!(w[0].1.is_empty() && w[2].1.is_empty());
    }

    #[test]
    fn a_combined_id_never_passes_200_characters() {
        let topics: Vec<Topic> = (0..40)
            .map(|i| t(&format!("v2.users.someone.part{i:02}")))
            .collect();
        let w = wire(topics.iter());
        assert!(w.len() > 1);
        assert!(w.iter().all(|(t, _)| t.as_str().chars().count() <= 200));
        let parts: usize = w.iter().map(|(_, p)| p.len().max(1)).sum();
        assert_eq!(parts, 40);
    }
}
