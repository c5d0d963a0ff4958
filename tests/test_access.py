"""Untrusted lists: which URIs a job may read (transforms/ingest/access.py), unit by unit and through
the whole job."""

from __future__ import annotations

import os

import pytest

from pipeline import tag
from tests.conftest import read_table
from transforms.core.launch import LaunchError
from transforms.core.records import StageError
from transforms.ingest.access import AccessFlags, AccessPolicy, scheme_of


def policy(schemes: str, local: bool, roots: str, input_is_glob: bool, input_scheme: str) -> AccessPolicy:
    return AccessFlags(schemes, local, roots).policy(input_is_glob, input_scheme)


def _refusal(p: AccessPolicy, uri: str) -> str:
    with pytest.raises(StageError) as info:
        p.check(uri)
    return info.value.error_type


def test_a_list_reads_the_web_only_by_default():
    web = policy("", False, "", input_is_glob=False, input_scheme="file")
    assert web.check("https://example.com/a.jpg") is None
    for uri in ("/etc/shadow", "../../../../etc/passwd", "file:///etc/hostname", "gs://bucket/a.jpg",
                "s3://bucket/a.jpg", "azfs://acct/c/a.jpg", "/proc/self/environ"):
        assert _refusal(web, uri) == "refused_scheme"


def test_a_glob_of_images_allows_its_own_scheme():
    assert policy("", False, "", input_is_glob=True, input_scheme="file").check("/x/a.jpg") == os.path.realpath("/x/a.jpg")
    assert _refusal(policy("", False, "", input_is_glob=True, input_scheme="gs"), "/x/a.jpg") == "refused_scheme"


def test_allowed_roots_stop_dotdot_and_symlink_escapes(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    (root / "ok.jpg").write_bytes(b"x")
    (root / "escape.jpg").symlink_to("/etc/hostname")
    p = policy("", True, str(root), input_is_glob=False, input_scheme="file")
    assert p.check(str(root / "ok.jpg")) == str(root / "ok.jpg")
    assert _refusal(p, str(root / ".." / ".." / "etc" / "passwd")) == "outside_allowed_roots"
    assert _refusal(p, str(root / "escape.jpg")) == "outside_allowed_roots"
    assert _refusal(p, str(tmp_path / "photos-evil" / "a.jpg")) == "outside_allowed_roots"


def test_an_unknown_scheme_is_refused_at_launch():
    AccessFlags("https,gs").check()
    with pytest.raises(LaunchError, match="unknown scheme 'ftp'"):
        AccessFlags("https,ftp").check()


@pytest.mark.parametrize("uri", ["http:/127.0.0.1/x.jpg", "http:127.0.0.1/x.jpg", "HTTPS:/host/x"])
def test_a_url_missing_its_slashes_is_malformed_not_a_local_path(uri):
    with pytest.raises(StageError) as info:
        scheme_of(uri)
    assert info.value.error_type == "invalid_uri"


def test_an_untrusted_list_reads_no_local_file_and_reveals_nothing(tmp_path, photos, http_server):
    base, routes = http_server
    from tests.conftest import send_bytes

    routes["/cat.png"] = send_bytes(photos["chelsea"].read_bytes(), "image/png")
    secret = tmp_path / "private.jpg"
    secret.write_bytes(photos["coffee"].read_bytes())
    listing = tmp_path / "urls.txt"
    hostile = ["/etc/shadow", "/proc/self/environ", "../../../../etc/passwd", "file:///etc/hostname",
               str(secret), str(tmp_path / "absent.jpg"), "gs://someone-elses-bucket/a.jpg",
               "http:/127.0.0.1/x.jpg"]
    listing.write_text(f"{base}/cat.png\n" + "".join(u + "\n" for u in hostile))
    out = tmp_path / "out"
    tag.run(["--input", str(listing), "--output", str(out), "--allow_private_networks", "--ingest_only",
             "--max_error_rate", "1"])
    assert [r["uri"] for r in read_table(out, "tags").to_pylist()] == [f"{base}/cat.png"]
    errors = {r["uri"]: r for r in read_table(out, "errors").to_pylist()}
    assert len(errors) == len(hostile)
    for uri, row in errors.items():
        if "http:/" in uri:
            assert row["error_type"] == "invalid_uri"
            continue
        assert row["error_type"] == "refused_scheme", uri
        # The private file and the absent one get the very same message: existence is not revealed.
        assert "bytes" not in row["error_message"] and "no such" not in row["error_message"]
    assert errors[str(secret)]["error_message"] == errors[str(tmp_path / "absent.jpg")]["error_message"]


def test_opting_in_reads_local_files_within_the_roots(tmp_path, photos):
    inside = tmp_path / "in"
    inside.mkdir()
    (inside / "cat.png").write_bytes(photos["chelsea"].read_bytes())
    listing = inside / "list.txt"
    listing.write_text("cat.png\n../outside.png\n")  # relative: against the list's folder
    (tmp_path / "outside.png").write_bytes(photos["coffee"].read_bytes())
    out = tmp_path / "out"
    tag.run(["--input", str(listing), "--output", str(out), "--allow_local_paths", "--allowed_roots",
             str(inside), "--ingest_only", "--max_error_rate", "1"])
    assert [r["uri"] for r in read_table(out, "tags").to_pylist()] == [str(inside / "cat.png")]
    [error] = read_table(out, "errors").to_pylist()
    assert error["uri"] == str(tmp_path / "outside.png") and error["error_type"] == "outside_allowed_roots"
