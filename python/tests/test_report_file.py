"""The report file is written through a temporary file of its own: a link planted at a
predictable name is never followed, and nothing is left behind."""
import json
import os

from crucible_clean import summary


def test_a_link_planted_next_to_the_report_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    report = tmp_path / "report.json"
    os.symlink(victim, str(report) + ".tmp")
    assert summary.write(str(report), {"totals": {"deleted": 1}}) is None
    assert victim.read_text() == "precious\n"
    assert json.loads(report.read_text()) == {"totals": {"deleted": 1}}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "report.json", "report.json.tmp", "victim.txt"]


def test_the_report_gets_the_users_file_mode_and_no_temporary_file_stays(tmp_path):
    old = os.umask(0o027)
    try:
        report = tmp_path / "sub" / "report.json"
        assert summary.write(str(report), {"a": 1}) is None
    finally:
        os.umask(old)
    assert oct(report.stat().st_mode & 0o777) == oct(0o640)
    assert [p.name for p in report.parent.iterdir()] == ["report.json"]

