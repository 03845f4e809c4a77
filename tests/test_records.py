"""decemb.records, the one reader of every table format: one file reads the same through ``decemb encode``
(in memory and sharded) and through the evaluation tasks; one bad row is the same one line through each;
what the csv module writes (cells holding tabs, quotes, newlines) reads back as written; STS-B's ragged
layout is the one raw-tab exception."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from decemb.distributed.sources import open_source, plan_input, read_shard
from decemb.encode import read_texts
from decemb.errors import ConfigError
from decemb.records import format_of, iter_records, iter_rows, scan_rows, table_header
from decemb.tasks import TaskDataError, load_task
from decemb.tasks._io import column, read_table

HARD_CELLS = [
    ("d1", "a tab\there and a comma, there", "x"),
    ("d2", 'she said "hello" twice', "y"),
    ("d3", "two\nlines", "x"),
    ("d4", '"quoted from the start"', "y"),
    ("d5", "plain text", "x"),
]


def write_table(path: Path, delimiter: str, rows=HARD_CELLS, header=("id", "text", "label")) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize(("fmt", "delimiter"), [("csv", ","), ("tsv", "\t")])
def test_what_csv_writes_reads_back_as_written(fmt: str, delimiter: str, tmp_path: Path) -> None:
    path = write_table(tmp_path / f"hard.{fmt}", delimiter)
    rows = [row for _, row in iter_rows(path, fmt)]
    assert rows == [["id", "text", "label"], *[list(row) for row in HARD_CELLS]]
    assert [record for *_, record in iter_records(path, fmt)] == [
        {"id": i, "text": t, "label": y} for i, t, y in HARD_CELLS
    ]
    lines = [number for number, _ in iter_rows(path, fmt)]
    assert lines == [1, 2, 3, 4, 6, 7]  # the line where each row starts (d3's cell spans lines 4-5)


@pytest.mark.parametrize(("fmt", "delimiter"), [("csv", ","), ("tsv", "\t")])
def test_one_file_reads_the_same_through_encode_and_the_tasks(fmt: str, delimiter: str, tmp_path: Path) -> None:
    path = write_table(tmp_path / f"data.{fmt}", delimiter)
    texts, ids = read_texts(path, column="text", id_column="id")
    assert (texts, ids) == ([t for _, t, _ in HARD_CELLS], [i for i, _, _ in HARD_CELLS])
    plan = plan_input(open_source(path, "text", "id"), 2)
    sharded = [read_shard(plan.source, shard) for shard in plan.shards]
    assert [i for got, _ in sharded for i in got] == ids and [t for _, got in sharded for t in got] == texts
    table = read_table(path, fmt, True, task="t")
    assert column(table, "text", task="t", key="text") == texts
    assert column(table, "id", task="t", key="id") == ids
    config = {"type": "clustering", "name": "c", "path": str(path), "format": fmt, "header": True}
    task = load_task({**config, "text": "text", "label": "label"})
    assert sorted(task.texts) == sorted(texts)  # a clustering task keeps every row (its own order)


LIMIT = "field larger than field limit (131072)"  # the csv module's own limit on one cell
BAD = [
    ("csv", "id,text\nd1,one\n\nd2,two,three\n", "line 4 has 3 cells, the header has 2 (too many)"),
    ("tsv", "id\ttext\nd1\tone\nd2\n", "line 3 has 1 cells, the header has 2 (too few)"),
    ("csv", f"id,text\nd1,ok\nd2,{'x' * 140_000}\n", f"line 3 is not a valid csv row ({LIMIT})"),
    ("jsonl", '{"id": "d1", "text": "one"}\n[1, 2]\n', "line 2 is not a JSON object"),
    ("jsonl", '{"id": "d1", "text": "one"}\n\n{"id": \n', "line 3 is not valid JSON (Expecting value)"),
]


@pytest.mark.parametrize(("fmt", "content", "problem"), BAD)
def test_one_bad_row_is_the_same_line_through_every_entry_point(
    fmt: str, content: str, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / f"bad.{fmt}"
    path.write_text(content, encoding="utf-8")
    expected = f"{path}: {problem}"
    with pytest.raises(ConfigError) as in_memory:
        read_texts(path, column="text", id_column="id")
    with pytest.raises(ConfigError) as sharded:
        plan_input(open_source(path, "text", "id"), 10)
    with pytest.raises(TaskDataError) as task:
        read_table(path, fmt, True, task="t")
    assert str(in_memory.value) == str(sharded.value) == expected
    assert str(task.value) == f"task 't': {expected}"


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("id,text\nd1,fine\nd2,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        read_texts(path, column="text")
    at = len(b"id,text\nd1,fine\nd2,caf")  # the offending byte's offset in the file
    assert str(caught.value) == f"{path}: line 3 is not UTF-8 text (invalid continuation byte at byte {at})"
    with pytest.raises(TaskDataError, match=r"line 3 is not UTF-8 text"):
        read_table(path, "csv", True, task="t")


def test_stsb_ragged_rows_split_at_every_tab(tmp_path: Path) -> None:
    """STS-B's original layout (``ragged``): quote characters are text, rows may carry extra cells; the same
    file read with tsv quoting would merge the quoted sentence with what follows."""
    lines = [
        'main-captions\tMSRvid\t2012test\t0001\t5.000\t"A man plays.\tA man is playing.',
        "main-news\tMSRpar\t2012test\t0002\t1.500\tNews one.\tNews two.\tsource-a\tsource-b",
    ]
    path = tmp_path / "sts.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = [row for _, row in iter_rows(path, "tsv", header=False, ragged=True)]
    assert rows == [line.split("\t") for line in lines]
    task = load_task({"type": "sts", "name": "s", "path": str(path), "format": "stsb"})
    assert task.text1 == ['"A man plays.', "News one."] and task.gold == [5.0, 1.5]
    merged = read_table(path, "tsv", False, task="t")  # not ragged: tsv quoting
    assert len(merged.rows) == 1 and merged.rows[0][5].startswith("A man plays.\tA man is playing.\nmain-news")


def test_byte_offsets_resume_a_scan_in_the_middle(tmp_path: Path) -> None:
    path = write_table(tmp_path / "t.tsv", "\t")
    header, body, line = table_header(path, "tsv")
    assert header == ["id", "text", "label"] and line == 2
    rows = list(scan_rows(path, "tsv", begin=body, line=line, width=3))
    third_offset, third_line = rows[2][1], rows[2][0]
    tail = list(scan_rows(path, "tsv", begin=third_offset, line=third_line, width=3))
    assert tail == rows[2:]
    middle = list(scan_rows(path, "tsv", begin=rows[1][1], end=third_offset, line=rows[1][0], width=3))
    assert middle == rows[1:2] and middle[0][2] == list(HARD_CELLS[1])


def test_text_files_and_formats(tmp_path: Path) -> None:
    path = tmp_path / "texts.txt"
    path.write_bytes(b'\xef\xbb\xbffirst line\r\n\n   \nsecond "line"\n')
    assert read_texts(path) == (["first line", 'second "line"'], None)
    assert [row for _, row in iter_rows(path, "txt")] == [["first line"], ['second "line"']]
    assert [format_of(tmp_path / name) for name in ("a.CSV", "b.tsv", "c.ndjson", "d.jsonl", "e.md")] == [
        "csv",
        "tsv",
        "jsonl",
        "jsonl",
        "txt",
    ]
    assert format_of(tmp_path) == "parquet" and format_of(tmp_path / "x.parquet") == "parquet"
