"""``ml4paleo user``: the admin's commands for a lab's accounts, on the data folder's database."""

from __future__ import annotations

from click.testing import CliRunner

from ml4paleo.cli import main
from ml4paleo.jobs.store import JobStore
from ml4paleo.settings import Settings


def _user(data, *args: str, password: str = ""):
    return CliRunner().invoke(main, ["user", *args, "--data", str(data)], input=password + "\n")


def test_add_list_passwd_give_remove_and_audit(tmp_path):
    assert _user(tmp_path, "add", "ada", "--admin", password="ada-password").output == "added administrator ada\n"
    assert _user(tmp_path, "add", "bea", password="bea-password").exit_code == 0
    store = JobStore(Settings.from_env({}, data=tmp_path))
    legacy = store.jobs.create_job("made before accounts")["job_id"]
    assert _user(tmp_path, "give", "bea", "--unowned").output == "1 job(s) now owned by bea\n"
    listed = _user(tmp_path, "list").output.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["ada", "admin", "0 job(s)"], ["bea", "user", "1 job(s)"]]
    assert _user(tmp_path, "passwd", "bea", password="new-password").exit_code == 0
    assert store.accounts.authenticate("bea", "new-password", "", limit=5).name == "bea"
    assert _user(tmp_path, "remove", "bea", "--transfer-to", "ada").output.startswith("removed bea; 1 job(s) now owned")
    assert store.sharing.access(legacy, store.accounts.authenticate("ada", "ada-password", "", limit=5)).value == "write"
    store.sharing.audit(legacy, "download", "GET /x", "ada")
    assert _user(tmp_path, "audit", "--user", "ada").output.split("\t")[1:4] == ["ada", "download", legacy]
    store.close()


def test_mistakes_are_one_line_errors(tmp_path):
    for args, password, message in ((("add", "ada"), "short", "8 to 1000 characters"),
                                    (("add", "../ada"), "long enough", "user name"),
                                    (("passwd", "nobody"), "long enough", "no user 'nobody'"),
                                    (("remove", "nobody"), "", "no user 'nobody'"),
                                    (("give", "nobody"), "", "JOB_IDS")):
        result = _user(tmp_path, *args, password=password)
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, result.output


def test_a_new_password_ends_sessions_and_offers_to_revoke_tokens(tmp_path):
    assert _user(tmp_path, "add", "ada", password="ada-password").exit_code == 0
    store = JobStore(Settings.from_env({}, data=tmp_path))
    uid = store.accounts.user_id("ada")
    session, _ = store.accounts.start_session(user_id=uid, hours=1)
    token = store.accounts.new_token(uid, "script")["token"]
    done = _user(tmp_path, "passwd", "ada", password="new-password")
    assert done.output == ("password of ada changed; 1 session(s) ended; "
                           "their API tokens still work (--revoke-tokens revokes them)\n")
    assert store.accounts.session(session) is None and store.accounts.token_viewer(token).name == "ada"
    session, _ = store.accounts.start_session(user_id=uid, hours=1)
    done = _user(tmp_path, "passwd", "ada", "--revoke-tokens", password="newer-password")
    assert done.output == "password of ada changed; 1 session(s) ended; 1 API token(s) revoked\n"
    assert store.accounts.session(session) is None and store.accounts.token_viewer(token) is None
    store.close()
