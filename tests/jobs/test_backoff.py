import random

from ogdc_hooks.jobs.backoff import retry_delay


def test_delay_grows_exponentially_within_jitter_bounds() -> None:
    rng = random.Random(7)
    for attempt, bound in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0)]:
        delays = [retry_delay(attempt, rng=rng) for _ in range(200)]
        assert min(delays) >= bound / 2
        assert max(delays) <= bound
        assert len(set(delays)) > 100  # jittered, not a constant


def test_delay_is_capped() -> None:
    assert retry_delay(50, cap=600.0) <= 600.0


def test_retry_after_is_a_floor() -> None:
    assert retry_delay(1, retry_after=90.0) == 90.0
    assert retry_delay(1, retry_after=0.5) >= 1.0
