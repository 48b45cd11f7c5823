"""The table says how it measured (threads, warm-up), marks widely spread timings and lists skipped runtimes."""

from flurka_export.bench.measure import BenchResult
from flurka_export.bench.report import LEGEND, format_table
from flurka_export.bench.run import add_speedups

SETTINGS = {"threads": 3, "warmup": 2, "iters": 10, "batch": 1}


def report(results, skipped=None, load=0.2):
    add_speedups(results)
    return {"settings": SETTINGS, "environment": {"load_average_start": load, "physical_cores": 2},
            "results": [r.__dict__ for r in results], "skipped": skipped or {}}


def result(kind, p50, p90, runtime="ort-cpu", n=64):
    return BenchResult(kind, runtime, n, 1, p50, p90, p90, p50, 1, 1, 5.0)


def test_steady_rows_unmarked_threads_and_warmup_in_caption():
    text = format_table(report([result("softmax", 10, 11), result("flurka-elu", 2, 2.2)]))
    lines = text.splitlines()
    assert lines[0].startswith("threads 3 per runtime") and "2 warm-up + 10 timed calls" in lines[0]
    assert "*" not in text and LEGEND not in text and "busy" not in text
    assert any(" 5.00x" in line and "flurka-elu" in line for line in lines)


def test_spread_over_limit_marks_the_row_its_speedup_and_adds_the_legend():
    rs = [result("softmax", 10, 11), result("flurka-elu", 1, 40), result("softmax", 10, 40, n=128),
          result("flurka-relu", 2, 2.1, n=128)]
    text = format_table(report(rs))
    row = {(line.split()[0], line.split()[2]): line for line in text.splitlines() if line.startswith("flurka")}
    assert "40.00*" in row[("flurka-elu", "64")] and "10.00x*" in row[("flurka-elu", "64")]
    assert "5.00x*" in row[("flurka-relu", "128")]  # steady itself, but its softmax baseline is not
    assert "1.05" in row[("flurka-relu", "128")] and "1.05*" not in row[("flurka-relu", "128")]
    assert text.count(LEGEND) == 1
    assert [r.unstable for r in rs] == [False, True, True, False] and rs[1].spread == 40.0


def test_skip_lines_and_busy_machine_warning():
    text = format_table(report([result("softmax", 10, 11)], skipped={"trt": "TensorRT not installed"}, load=5.5))
    assert "trt: skipped (TensorRT not installed)" in text.splitlines()
    assert "busy (load average 5.5 on 2 cores" in text


def test_markdown_table():
    text = format_table(report([result("softmax", 10, 11)]), markdown=True)
    assert "| softmax | ort-cpu | 64 | 10.00 | 11.00 | 11.00 | 1.10 |" in text
