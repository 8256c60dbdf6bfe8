"""The scaler's sums of its workers' heartbeat figures: per pool, host-local, never going back."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from scaler.fleet import Fleet
from translator.bus.heartbeat import heartbeat_key
from translator.contracts.errors import ERROR_REASONS
from translator.contracts.telemetry import BATCH_STAGES, Histogram, WorkerHeartbeat, WorkerStats


def beat(worker: str, ok: int, host: str = "here", pool: str = "normal") -> WorkerHeartbeat:
    processing = Histogram()
    for _ in range(ok):
        processing = processing.observe(0.3)
    stats = WorkerStats(
        translations={"ok": ok, "error": 1},
        errors={"unsupported_language": 1},
        dead_letters=1,
        processing_seconds=processing,
        model_load_seconds={"t5-small": 2.5},
    )
    return WorkerHeartbeat(
        worker_id=worker, pool=pool, pid=1, host=host, state="ready", rss_mb=100, stats=stats
    )


def scrape(fleet: Fleet) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    class Source:
        def collect(self):  # type: ignore[no-untyped-def]
            return fleet.families()

    registry = CollectorRegistry()
    registry.register(Source())
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def test_workers_of_this_host_are_summed_per_pool_and_gone_workers_still_count() -> None:
    fleet = Fleet("here")
    fleet.update([beat("a", 3), beat("b", 4), beat("c", 10, pool="any"), beat("x", 50, "there")])
    fleet.update([beat("a", 5), beat("c", 10, pool="any")])  # b is gone; a did 2 more
    fleet.update([beat("a", 6), beat("c", 10, pool="any")])
    values = scrape(fleet)
    normal = (("pool", "normal"),)
    assert values[("translator_translations_total", (*normal, ("status", "ok")))] == 10
    assert values[("translator_translations_total", (*normal, ("status", "error")))] == 2
    assert values[("translator_translations_total", (("pool", "any"), ("status", "ok")))] == 10
    reason = ("reason", "unsupported_language")
    assert values[("translator_errors_total", (*normal, reason))] == 2
    assert values[("translator_dead_letters_total", normal)] == 2
    assert values[("translator_processing_seconds_count", normal)] == 10
    assert values[("translator_processing_seconds_bucket", (("le", "0.25"), *normal))] == 0
    assert values[("translator_processing_seconds_bucket", (("le", "0.5"), *normal))] == 10
    assert abs(values[("translator_processing_seconds_sum", normal)] - 3.0) < 1e-9
    load = ("translator_model_load_seconds", (("model", "t5-small"), *normal))
    assert values[load] == 2.5
    rss = [k for k in values if k[0] == "translator_worker_rss_bytes"]
    assert sorted(dict(labels)["worker"] for _, labels in rss) == ["a", "c"]


def test_a_worker_seen_again_after_a_gap_is_not_counted_twice() -> None:
    fleet = Fleet("here")
    fleet.update([beat("a", 3)])
    fleet.update([])
    fleet.update([beat("a", 4)])
    assert fleet.totals()["normal"].translations["ok"] == 4


def test_every_known_series_is_exported_at_zero_before_any_worker_reports() -> None:
    values = scrape(Fleet("here"))
    for pool in ("normal", "any"):
        for status in ("ok", "error"):
            assert (
                values[("translator_translations_total", (("pool", pool), ("status", status)))] == 0
            )
        for reason in ERROR_REASONS:
            assert values[("translator_errors_total", (("pool", pool), ("reason", reason)))] == 0
        assert values[("translator_dead_letters_total", (("pool", pool),))] == 0
        assert values[("translator_processing_seconds_count", (("pool", pool),))] == 0
        assert values[("translator_queue_seconds_bucket", (("le", "+Inf"), ("pool", pool)))] == 0
        for stage in BATCH_STAGES:
            assert (
                values[("translator_batch_seconds_total", (("pool", pool), ("stage", stage)))] == 0
            )
        assert values[("translator_generate_cpu_seconds_total", (("pool", pool),))] == 0


def test_a_worker_gone_without_a_clean_stop_is_lost() -> None:
    fleet = Fleet(None)  # observe mode: every host
    fleet.update([beat("a", 1), beat("b", 1), beat("c", 1, pool="any")])
    fleet.update([beat("c", 1, pool="any")], stopped=frozenset({heartbeat_key("normal", "a")}))
    assert fleet.lost == {"normal": 1, "any": 0}  # a stopped cleanly, b vanished
    fleet.update([], stopped=frozenset())
    assert fleet.lost == {"normal": 1, "any": 1}


def test_cache_lookups_and_model_fallbacks_are_exported_per_pool() -> None:
    fleet = Fleet("here")
    stats = WorkerStats(
        cache={"hits": 7, "misses": 3, "bytes_written": 420},
        fallbacks={"basic>medium:fr-en": 2},
    )
    fleet.update([WorkerHeartbeat(worker_id="w", pool="normal", pid=1, host="here",
                                  state="ready", stats=stats)])  # fmt: skip
    values = scrape(fleet)
    assert values[("translator_cache_lookups_total", (("pool", "normal"), ("result", "hit")))] == 7
    assert values[("translator_cache_lookups_total", (("pool", "normal"), ("result", "miss")))] == 3
    assert values[("translator_cache_lookups_total", (("pool", "any"), ("result", "hit")))] == 0
    assert values[("translator_cache_written_bytes_total", (("pool", "normal"),))] == 420
    labels = (("asked", "basic"), ("pool", "normal"), ("source", "fr"), ("target", "en"),
              ("used", "medium"))  # fmt: skip
    assert values[("translator_model_fallbacks_total", labels)] == 2


def test_batch_stages_are_summed_over_workers_and_kept_when_one_is_gone() -> None:
    fleet = Fleet("here")

    def with_stages(worker: str, generate: float, cpu: float) -> WorkerHeartbeat:
        stats = WorkerStats(
            batch_seconds={"fetch": 0.5, "generate": generate}, generate_cpu_seconds=cpu
        )
        return WorkerHeartbeat(worker_id=worker, pool="normal", pid=1, host="here",
                               state="ready", stats=stats)  # fmt: skip

    fleet.update([with_stages("a", 10.0, 9.0), with_stages("b", 4.0, 3.5)])
    fleet.update([with_stages("b", 6.0, 5.0)])  # a is gone: what it counted stays
    values = scrape(fleet)
    stage = "translator_batch_seconds_total"
    assert values[(stage, (("pool", "normal"), ("stage", "generate")))] == 16.0
    assert values[(stage, (("pool", "normal"), ("stage", "fetch")))] == 1.0
    assert values[(stage, (("pool", "normal"), ("stage", "settle")))] == 0
    assert values[("translator_generate_cpu_seconds_total", (("pool", "normal"),))] == 14.0
