"""The pytest plugin as a user meets it: a test module using its fixtures, run by pytest in a subprocess."""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = '''
import numpy as np
from PIL import Image


def make_images(directory, count):
    """Distinct small JPEGs of random blocks."""
    rng = np.random.default_rng(7)
    paths = []
    for i in range(count):
        path = directory / f"img_{i}.jpg"
        Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)).resize((96, 64)).save(path)
        paths.append(path)
    return paths


def test_run_delivers_signed_and_anchored(provsim_sim, webhook_receiver, tmp_path):
    receiver = webhook_receiver()
    provsim_sim.register(receiver.url, receiver.secret)
    report = provsim_sim.run(make_images(tmp_path, 2))
    assert report.exit_code == 0
    ids = {rec.id for rec in report.registered}
    assert {e["data"]["record_id"] for e in receiver.wait_for("content.signed", count=2)} == ids
    assert set(receiver.wait_for("batch.anchored")[0]["data"]["record_ids"]) == ids


def test_royal_api_registration_in_order(provsim_sim, webhook_receiver):
    receiver = webhook_receiver(dialect="royal")
    provsim_sim.register(receiver.url, receiver.secret, dialect="royal")
    fired = provsim_sim.trigger("royal.api-registration")
    assert [f.ok for f in fired] == [True] * 4
    receiver.wait_for("provenance.registration.nft_added")
    assert [e["type"].rsplit(".", 1)[1] for e in receiver.events] == ["hashed", "submitted", "complete", "nft_added"]


def test_verify_a_registered_file(provsim_sim, webhook_receiver, tmp_path):
    receiver = webhook_receiver()
    provsim_sim.register(receiver.url, receiver.secret)
    [image] = make_images(tmp_path, 1)
    provsim_sim.run([image])
    result = provsim_sim.verify(image)
    assert result["authentic"] is True and result["confidence"] == 0.75
    assert receiver.wait_for("content.verified")[0]["data"] == result


def test_expects_what_never_comes(provsim_sim, webhook_receiver):
    receiver = webhook_receiver()
    provsim_sim.register(receiver.url, receiver.secret)
    provsim_sim.trigger("content.signed", data__original_filename="x.jpg")
    receiver.wait_for("batch.anchored", count=2, timeout=0.5)


def test_receiver_with_another_secret(provsim_sim, webhook_receiver):
    receiver = webhook_receiver()
    provsim_sim.register(receiver.url)
    assert [f.status for f in provsim_sim.trigger("content.signed")] == [401]
    receiver.wait_for("content.signed", timeout=0.5)
'''


@pytest.fixture
def run_user_tests(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run pytest in a subprocess with the plugin given by -p (and no other plugin autoloaded)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # an installed entry point would load it twice

    def run(*args: str) -> pytest.RunResult:
        """pytest with these arguments on the files made in pytester's directory, bounded in time."""
        return pytester.runpytest_subprocess("-p", "pipeline.pytest_plugin", *args, timeout=120)

    return run


def test_the_fixtures_are_listed(pytester: pytest.Pytester, run_user_tests):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = run_user_tests("--fixtures")
    result.stdout.fnmatch_lines(["provsim_sim*", "*in-process provsim*", "webhook_receiver*",
                                 "*Factory: webhook_receiver(secret=None, dialect=\"tectra\")*"])


def test_a_users_tests_pass_and_fail_as_they_should(pytester: pytest.Pytester, run_user_tests):
    pytester.makepyfile(test_receiver=USER_TESTS)
    result = run_user_tests("-v")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines_random([
        "*::test_run_delivers_signed_and_anchored PASSED*",
        "*::test_royal_api_registration_in_order PASSED*",
        "*::test_verify_a_registered_file PASSED*",
        "*::test_expects_what_never_comes FAILED*",
        "*::test_receiver_with_another_secret FAILED*",
        "E *AssertionError: expected 2 verified 'batch.anchored' webhook(s) at http://127.0.0.1:*/ within 0.5s,"
        " got 0; arrived: content.signed x1",
        "E *AssertionError: expected 1 verified 'content.signed' webhook(s) at http://127.0.0.1:*/ within 0.5s,"
        " got 0; arrived: 1 with a bad signature (answered 401)",
    ])
