//! `judge`: which presented generations are exchanges, replays and reuse.

use super::*;

fn session(generation: i64, rotated_at: Option<i64>, burst: (i64, Option<i64>)) -> Session {
    Session {
        id: Id::new(),
        user_id: Id::new(),
        created_at: 0,
        last_used_at: rotated_at.unwrap_or(0),
        expires_at: 1_000_000,
        ended_at: None,
        end_reason: None,
        user_agent: None,
        ip: None,
        amr: "pwd".into(),
        generation,
        rotated_at,
        burst_generation: burst.0,
        burst_at: burst.1,
        resource: None,
        scope: None,
        client_id: "portcullis".into(),
        browser_session_id: None,
        auth_time: None,
    }
}

#[test]
fn the_current_generation_is_exchanged_and_a_run_of_quick_exchanges_keeps_its_start() {
    let first = judge(&session(0, None, (0, None)), 0, UnixMillis(100), 10);
    assert!(matches!(
        first,
        Verdict::Exchange(Advance { from: 0, burst_generation: 0, burst_at: UnixMillis(100), .. })
    ));
    let quick = judge(&session(3, Some(95), (1, Some(90))), 3, UnixMillis(100), 10);
    assert!(matches!(quick, Verdict::Exchange(Advance { burst_generation: 1, burst_at: UnixMillis(90), .. })));
    let later = judge(&session(3, Some(80), (1, Some(70))), 3, UnixMillis(100), 10);
    assert!(matches!(later, Verdict::Exchange(Advance { burst_generation: 3, burst_at: UnixMillis(100), .. })));
}

#[test]
fn earlier_generations_are_replays_only_when_known_to_be_within_the_grace_interval() {
    let s = session(5, Some(95), (3, Some(92)));
    assert_eq!(judge(&s, 4, UnixMillis(100), 10), Verdict::Replay);
    assert_eq!(judge(&s, 3, UnixMillis(100), 10), Verdict::Replay);
    assert_eq!(judge(&s, 2, UnixMillis(100), 10), Verdict::Reuse, "exchanged before the run began");
    assert_eq!(judge(&s, 0, UnixMillis(100), 10), Verdict::Reuse);
    assert_eq!(judge(&s, 4, UnixMillis(104), 10), Verdict::Replay, "the previous one, 12 s after the run began");
    assert_eq!(judge(&s, 3, UnixMillis(104), 10), Verdict::Reuse, "its exchange time is not known to be recent");
    assert_eq!(judge(&s, 4, UnixMillis(100), 0), Verdict::Reuse, "no grace at all");
    assert_eq!(judge(&s, 6, UnixMillis(100), 10), Verdict::Unknown);
}
