"""Lambda cost and memory advice (lamb.cost): pure arithmetic on measured timings."""

import pytest

from lamb import cost
from lamb.errors import InputError


def test_prices_carry_their_source():
    for arch, price in cost.PRICES.items():
        assert price.arch == arch and price.source.startswith("https://aws.amazon.com/lambda/pricing")
        assert price.checked and price.gb_second > 0 and price.per_million_requests == 0.20
    assert cost.PRICES["arm64"].gb_second < cost.PRICES["x86_64"].gb_second


def test_duration_scales_with_cpu_share_below_one_vcpu():
    assert cost.lambda_duration_ms(100, 1769) == pytest.approx(100)
    assert cost.lambda_duration_ms(100, 3538) == pytest.approx(100)  # one thread: no faster above 1 vCPU
    assert cost.lambda_duration_ms(100, 1769 // 2) == pytest.approx(200, rel=1e-3)


def test_cost_is_flat_below_one_vcpu_and_grows_above():
    below = [cost.cost_per_million(131, m) for m in (256, 512, 1024, 1769)]
    assert max(below) / min(below) < 1.01  # only the 1 ms rounding differs
    assert cost.cost_per_million(131, 3538) == pytest.approx(2 * below[-1] - 0.20, rel=0.01)
    # by hand: 131 ms at 1,769 MB = 0.131 s x 1.7275 GB x $0.0000166667 = $3.77e-6, + $0.20 per million
    assert cost.cost_per_million(131, 1769) == pytest.approx(0.131 * 1769 / 1024 * 0.0000166667 * 1e6 + 0.20, rel=1e-6)
    assert cost.cost_per_million(131, 1769, "arm64") < cost.cost_per_million(131, 1769, "x86_64")


def test_advice_is_where_cost_stops_being_flat_with_rss_as_floor():
    advice = cost.advise_memory(66.0, peak_rss_mb=134)
    assert advice.recommended_mb == 1769 and advice.floors == {"peak RSS": 256}
    assert "stops being flat" in advice.reason and advice.duration_ms == pytest.approx(66.0)
    big = cost.advise_memory(66.0, peak_rss_mb=3000)  # the floor wins
    assert big.recommended_mb == cost.recommend_memory_mb(3000) and "floor set by peak RSS" in big.reason


def test_advice_meets_a_latency_target_at_the_smallest_setting():
    advice = cost.advise_memory(66.0, peak_rss_mb=134, max_latency_ms=200)
    assert advice.latency_met and advice.duration_ms <= 200
    assert advice.recommended_mb == 584  # ceil(1769 x 66 / 200)
    floored = cost.advise_memory(66.0, peak_rss_mb=134, max_latency_ms=1000)
    assert floored.recommended_mb == 256 and floored.latency_met
    missed = cost.advise_memory(66.0, peak_rss_mb=134, max_latency_ms=50)
    assert missed.latency_met is False and missed.recommended_mb == 1769 and "no setting meets" in missed.reason


def test_other_floors_join_the_rss_floor():
    advice = cost.advise_memory(10.0, peak_rss_mb=100, floors={"pixel budget": 2048})
    assert advice.recommended_mb == 2048 and "pixel budget" in advice.reason


def test_memory_rule():
    assert cost.recommend_memory_mb(40) == 128  # Lambda's minimum
    assert cost.recommend_memory_mb(300) == 448  # 300 x 1.25 + 32 = 407 -> next 64 MB step
    assert cost.recommend_memory_mb(9000) == 10240  # Lambda's maximum


def test_bad_values_are_input_errors():
    with pytest.raises(InputError):
        cost.parse_memory_list("512,lots", (1024,))
    with pytest.raises(InputError):
        cost.parse_memory_list("64", (1024,))
    with pytest.raises(InputError):
        cost.price_for("sparc")
    with pytest.raises(InputError):
        cost.advise_memory(10.0, max_latency_ms=0)
    assert cost.parse_memory_list("1024, 512MB,512", (1,)) == [512, 1024]


def test_the_advice_does_not_move_with_timing_noise():
    # Two runs of the same small function (invoke here, the smoke run deploy and the image README
    # read) differ by a few hundred microseconds and a few hundred ms of cold start: the 1 ms
    # billing granularity used to move the memory (1,769 vs 1,752 MB), the cold start the timeout.
    advice = {(cost.advise_function(ms, init_ms=init, peak_rss_mb=rss).memory_mb,
               cost.advise_function(ms, init_ms=init, peak_rss_mb=rss).timeout_s)
              for ms in (0.4, 0.5, 2.7, 3.1) for init in (300.0, 700.0, 1_100.0, 1_600.0) for rss in (48.0, 50.0, 53.0)}
    assert len(advice) == 1
    ((memory, timeout),) = advice
    assert memory == cost.MB_PER_VCPU and timeout % cost.TIMEOUT_STEP_S == 0


def test_a_small_model_is_told_the_memory_it_needs_and_that_the_rest_buys_speed():
    # a 242 KB model peaking at 50 MB: one vCPU, and why, with what 128 MB would do
    advice = cost.advise_memory(3.0, peak_rss_mb=50)
    assert advice.recommended_mb == cost.MB_PER_VCPU
    assert "only the vCPU share buys speed" in advice.reason and "needs just 128 MB (peak 50 MB measured)" in advice.reason
    at_floor = f"about {cost.lambda_duration_ms(3.0, 128):,.0f} ms"
    assert at_floor in advice.reason and f"${cost.cost_per_million(3.0, 128):,.2f}" in advice.reason
    # below one vCPU the price per request is flat: equal prices are said once, not "$X instead of $X"
    small, full = f"${cost.cost_per_million(3.0, 128):,.2f}", f"${cost.cost_per_million(3.0, cost.MB_PER_VCPU):,.2f}"
    assert (f"for the same {full}" in advice.reason) if small == full else (f"for {small} instead of {full}" in advice.reason)
    assert f"{small} instead of {small}" not in advice.reason
    big = cost.advise_memory(3.0, peak_rss_mb=1000)  # needs most of a vCPU anyway: no such sentence
    assert "only the vCPU share buys speed" not in big.reason


def test_the_shipped_handler_sizes_its_threads_by_the_same_cpu_figures():
    # The handler cannot import lamb, so it repeats the two figures; they must not drift apart.
    from lamb.handler.lambkit import settings

    assert settings.MB_PER_VCPU == cost.MB_PER_VCPU
    assert settings.MAX_LAMBDA_VCPUS == cost.MAX_VCPUS


def test_a_second_thread_counts_only_as_measured_and_only_up_to_two():
    from lamb.cost import MB_PER_VCPU, lambda_duration_ms

    assert lambda_duration_ms(100.0, MB_PER_VCPU, 1.6) == 100.0
    assert lambda_duration_ms(100.0, 2 * MB_PER_VCPU, 1.6) == 100.0 / 1.6
    assert lambda_duration_ms(100.0, 10240, 1.6) == 100.0 / 1.6  # never extrapolated past 2 threads
    share = 2500 / MB_PER_VCPU  # 1.41 vCPU: two threads, but only the CPU there is
    assert lambda_duration_ms(100.0, 2500, 1.9) == 100.0 / share
    assert lambda_duration_ms(100.0, 3000, None) == lambda_duration_ms(100.0, 3000, 0.9) == 100.0
    assert lambda_duration_ms(100.0, 885, 1.6) == 100.0 / (885 / MB_PER_VCPU)  # below a vCPU, as before


def test_a_latency_target_above_one_vcpu_is_met_with_the_measured_speedup():
    from lamb.cost import MB_PER_VCPU, advise_memory

    one_thread = advise_memory(200.0, max_latency_ms=150.0)
    assert one_thread.latency_met is False and "one thread takes 200 ms" in one_thread.reason
    two = advise_memory(200.0, max_latency_ms=150.0, speedup=1.7)
    assert two.latency_met is True and two.recommended_mb > MB_PER_VCPU
    assert two.duration_ms is not None and two.duration_ms <= 150.0
    assert "measured here at 2 threads" in two.reason
    still = advise_memory(200.0, max_latency_ms=100.0, speedup=1.7)
    assert still.latency_met is False and "even with 2 threads (1.70x measured here at 2 threads)" in still.reason
