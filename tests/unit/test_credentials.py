"""s3erofs.credentials: every source, their order, and that no secret ever shows."""

import logging
import os

import pytest

from s3erofs.credentials import (
    read_passwd_file,
    resolve_credentials,
    resolve_endpoint,
    resolve_region,
)
from s3erofs.errors import CredentialsError
from s3erofs.sign import Credentials

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY%SECRETKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN=="
# every string that must never appear in a message, a repr or a log line
SECRETS = (SECRET, TOKEN, "OPTSECRET", "ENVSECRET", "FILESECRET", "CFGSECRET", "PWSECRET")


@pytest.fixture
def home(tmp_path):
    """A HOME with an empty ~/.aws; returns the env dict that points at it."""
    (tmp_path / ".aws").mkdir()
    return {"HOME": str(tmp_path)}


def write(path, text, mode=0o600):
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return str(path)


def aws_files(home, credentials=None, config=None):
    aws = os.path.join(home["HOME"], ".aws")
    if credentials is not None:
        write_path(os.path.join(aws, "credentials"), credentials)
    if config is not None:
        write_path(os.path.join(aws, "config"), config)
    return os.path.join(aws, "credentials"), os.path.join(aws, "config")


def write_path(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def assert_no_secret(text):
    for secret in SECRETS:
        assert secret not in text


def error_of(**kwargs):
    with pytest.raises(CredentialsError) as info:
        resolve_credentials(**kwargs)
    assert info.value.exit_code == 2
    assert_no_secret(str(info.value))
    assert_no_secret(repr(info.value))
    return str(info.value)


# order of sources

def test_anonymous_wins_over_everything(home):
    env = {**home, "AWS_ACCESS_KEY_ID": "ENVAK", "AWS_SECRET_ACCESS_KEY": "ENVSECRET"}
    assert resolve_credentials(access_key="AK", secret_key="OPTSECRET", anonymous=True,
                               env=env) is None


def test_options_win_over_passwd_env_and_profile(home, tmp_path):
    aws_files(home, credentials="[default]\naws_access_key_id = FILEAK\n"
                                "aws_secret_access_key = FILESECRET\n")
    passwd = write(tmp_path / "passwd", "PWAK:PWSECRET\n")
    env = {**home, "AWS_ACCESS_KEY_ID": "ENVAK", "AWS_SECRET_ACCESS_KEY": "ENVSECRET"}
    creds = resolve_credentials(access_key="OPTAK", secret_key="OPTSECRET", session_token=TOKEN,
                                passwd_file=passwd, env=env)
    assert creds == Credentials("OPTAK", "OPTSECRET", TOKEN)


def test_passwd_file_wins_over_env(home, tmp_path):
    passwd = write(tmp_path / "passwd", "PWAK:PWSECRET\n")
    env = {**home, "AWS_ACCESS_KEY_ID": "ENVAK", "AWS_SECRET_ACCESS_KEY": "ENVSECRET",
           "AWS_SESSION_TOKEN": TOKEN}
    assert resolve_credentials(passwd_file=passwd, env=env) == Credentials("PWAK", "PWSECRET")


def test_env_wins_over_profile_files(home):
    aws_files(home, credentials="[default]\naws_access_key_id = FILEAK\n"
                                "aws_secret_access_key = FILESECRET\n")
    env = {**home, "AWS_ACCESS_KEY_ID": "ENVAK", "AWS_SECRET_ACCESS_KEY": "ENVSECRET",
           "AWS_SESSION_TOKEN": TOKEN}
    assert resolve_credentials(env=env) == Credentials("ENVAK", "ENVSECRET", TOKEN)


def test_env_wins_over_aws_profile_but_not_over_profile_option(home):
    aws_files(home, credentials="[work]\naws_access_key_id = FILEAK\n"
                                "aws_secret_access_key = FILESECRET\n")
    env = {**home, "AWS_ACCESS_KEY_ID": "ENVAK", "AWS_SECRET_ACCESS_KEY": "ENVSECRET",
           "AWS_PROFILE": "work"}
    assert resolve_credentials(env=env) == Credentials("ENVAK", "ENVSECRET")
    # as in botocore: an explicit profile negates the environment keys
    assert resolve_credentials(profile="work", env=env) == Credentials("FILEAK", "FILESECRET")


def test_default_profile_from_credentials_file(home):
    aws_files(home, credentials="[other]\naws_access_key_id = X\naws_secret_access_key = Y\n"
                                "[default]\naws_access_key_id = FILEAK\n"
                                f"aws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n")
    assert resolve_credentials(env=home) == Credentials("FILEAK", SECRET, TOKEN)


def test_aws_profile_env_selects_profile(home):
    aws_files(home, credentials="[default]\naws_access_key_id = D\naws_secret_access_key = D\n"
                                "[work]\naws_access_key_id = FILEAK\n"
                                "aws_secret_access_key = FILESECRET\n")
    env = {**home, "AWS_PROFILE": "work"}
    assert resolve_credentials(env=env) == Credentials("FILEAK", "FILESECRET")


def test_profile_option_wins_over_aws_profile(home):
    aws_files(home, credentials="[a]\naws_access_key_id = A\naws_secret_access_key = AS\n"
                                "[b]\naws_access_key_id = B\naws_secret_access_key = BS\n")
    env = {**home, "AWS_PROFILE": "a"}
    assert resolve_credentials(profile="b", env=env) == Credentials("B", "BS")


def test_profile_from_config_file_sections(home):
    aws_files(home, config="[profile work]\naws_access_key_id = CFGAK\n"
                           "aws_secret_access_key = CFGSECRET\n"
                           "[default]\naws_access_key_id = DEFAK\n"
                           "aws_secret_access_key = CFGSECRET\n")
    assert resolve_credentials(profile="work", env=home) == Credentials("CFGAK", "CFGSECRET")
    assert resolve_credentials(env=home) == Credentials("DEFAK", "CFGSECRET")


def test_config_profile_section_without_prefix_is_not_a_profile(home):
    # in the config file "[work]" is not profile "work" (only "[default]" may omit the prefix)
    aws_files(home, config="[work]\naws_access_key_id = CFGAK\naws_secret_access_key = CFGSECRET\n")
    message = error_of(profile="work", env=home)
    assert message.startswith("profile 'work' (from --profile) not found in ")


def test_credentials_file_wins_over_config_file(home):
    aws_files(home, credentials="[work]\naws_access_key_id = FILEAK\n"
                                "aws_secret_access_key = FILESECRET\n",
              config="[profile work]\naws_access_key_id = CFGAK\n"
                     "aws_secret_access_key = CFGSECRET\n")
    assert resolve_credentials(profile="work", env=home) == Credentials("FILEAK", "FILESECRET")


def test_file_locations_from_env(home, tmp_path):
    creds_path = write(tmp_path / "creds.ini", "[p]\naws_access_key_id = FILEAK\n"
                                               "aws_secret_access_key = FILESECRET\n")
    config_path = write(tmp_path / "config.ini", "[profile q]\naws_access_key_id = CFGAK\n"
                                                 "aws_secret_access_key = CFGSECRET\n")
    env = {**home, "AWS_SHARED_CREDENTIALS_FILE": creds_path, "AWS_CONFIG_FILE": config_path}
    assert resolve_credentials(profile="p", env=env) == Credentials("FILEAK", "FILESECRET")
    assert resolve_credentials(profile="q", env=env) == Credentials("CFGAK", "CFGSECRET")


def test_secret_with_percent_and_semicolon_is_read_verbatim(home):
    secret = "ab%(x)s;c#d"
    aws_files(home, credentials=f"[default]\naws_access_key_id = AK\n"
                                f"aws_secret_access_key = {secret}\n")
    assert resolve_credentials(env=home).secret_key == secret


# incomplete or missing sources

def test_nothing_found_explains_every_place(home):
    message = error_of(env=home)
    aws = os.path.join(home["HOME"], ".aws")
    assert message == (
        "no AWS credentials found; looked at: access key options (none given), passwd file "
        "(none given), environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set), profile "
        f"'default' in {aws}/credentials (section [default]) or {aws}/config (section "
        "[profile default]) (no aws_access_key_id there). For a public bucket use "
        "--no-sign-request.")


def test_default_profile_with_region_only_is_not_credentials(home):
    aws_files(home, config="[default]\nregion = eu-west-1\n")
    assert error_of(env=home).startswith("no AWS credentials found; looked at: ")


@pytest.mark.parametrize(("profile", "env_profile", "origin"),
                         [("ghost", None, "--profile"), (None, "ghost", "AWS_PROFILE")])
def test_missing_explicit_profile(home, profile, env_profile, origin):
    aws_files(home, credentials="[default]\naws_access_key_id = FILEAK\n"
                                "aws_secret_access_key = FILESECRET\n")
    env = {**home, "AWS_PROFILE": env_profile} if env_profile else home
    aws = os.path.join(home["HOME"], ".aws")
    assert error_of(profile=profile, env=env) == (
        f"profile 'ghost' (from {origin}) not found in {aws}/credentials (section [ghost]) or "
        f"{aws}/config (section [profile ghost])")


def test_profile_with_role_is_refused_with_a_way_out(home):
    aws_files(home, config="[profile admin]\nrole_arn = arn:aws:iam::123456789012:role/x\n"
                           "source_profile = default\n")
    config = os.path.join(home["HOME"], ".aws", "config")
    assert error_of(profile="admin", env=home) == (
        f"profile 'admin' in {config} uses role_arn, which s3erofs does not support; export "
        "keys first, e.g. eval \"$(aws configure export-credentials --profile admin "
        "--format env)\"")


def test_profile_with_half_a_key_pair(home):
    aws_files(home, credentials="[default]\naws_secret_access_key = FILESECRET\n")
    path = os.path.join(home["HOME"], ".aws", "credentials")
    assert error_of(env=home) == f"profile 'default' in {path} has no aws_access_key_id"


def test_env_with_half_a_key_pair(home):
    assert error_of(env={**home, "AWS_SECRET_ACCESS_KEY": "ENVSECRET"}) == (
        "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
    assert error_of(env={**home, "AWS_ACCESS_KEY_ID": "ENVAK"}) == (
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")


def test_options_with_half_a_key_pair(home):
    assert error_of(access_key="AK", env=home) == (
        "an access key option needs both keys: the secret key is missing")
    assert error_of(secret_key="OPTSECRET", env=home) == (
        "an access key option needs both keys: the access key is missing")
    assert error_of(session_token=TOKEN, env=home) == (
        "a session token was given without an access key and a secret key")


def test_malformed_ini_names_line_not_content(home):
    aws_files(home, credentials=f"[default]\naws_access_key_id = AK\n{SECRET}\n")
    path = os.path.join(home["HOME"], ".aws", "credentials")
    assert error_of(env=home) == (
        f"{path}: line 3 is not INI syntax ([section] or name = value)")


def test_ini_without_section_header(home):
    aws_files(home, credentials=f"aws_secret_access_key = {SECRET}\n")
    path = os.path.join(home["HOME"], ".aws", "credentials")
    assert error_of(env=home) == f"{path}: line 1 is not INI syntax ([section] or name = value)"


# passwd file

def test_passwd_file_private_is_accepted(tmp_path):
    path = write(tmp_path / "passwd", f"# comment\n\n  AKIAEXAMPLE:{SECRET}  \n", mode=0o600)
    assert read_passwd_file(path) == Credentials("AKIAEXAMPLE", SECRET)
    os.chmod(path, 0o400)
    assert read_passwd_file(path) == Credentials("AKIAEXAMPLE", SECRET)


def test_passwd_file_secret_keeps_later_colons(tmp_path):
    path = write(tmp_path / "passwd", "AK:se:cret\r\n")
    assert read_passwd_file(path) == Credentials("AK", "se:cret")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_passwd_file_readable_by_others_is_refused(tmp_path, mode):
    path = write(tmp_path / "passwd", f"AK:{SECRET}\n", mode=mode)
    message = error_of(passwd_file=path, env={})
    assert message == (f"passwd file {path} is accessible by group or others (mode {mode:04o}); "
                       f"make it private with: chmod 600 {path}")


@pytest.mark.parametrize(("text", "problem"), [
    (f"{SECRET}\n", "line 1 is not ACCESS_KEY_ID:SECRET_ACCESS_KEY (UTF-8)"),
    ("# keys\nAK:\n", "line 2 is not ACCESS_KEY_ID:SECRET_ACCESS_KEY (UTF-8)"),
    (f":{SECRET}\n", "line 1 is not ACCESS_KEY_ID:SECRET_ACCESS_KEY (UTF-8)"),
    ("", "must hold one ACCESS_KEY_ID:SECRET_ACCESS_KEY line, found 0 such lines"),
    (f"AK:{SECRET}\nAK2:{SECRET}\n",
     "must hold one ACCESS_KEY_ID:SECRET_ACCESS_KEY line, found 2 such lines"),
])
def test_passwd_file_malformed(tmp_path, text, problem):
    path = write(tmp_path / "passwd", text)
    separator = ": " if problem.startswith("line") else " "
    assert error_of(passwd_file=path, env={}) == f"passwd file {path}{separator}{problem}"


def test_passwd_file_not_utf8(tmp_path):
    path = tmp_path / "passwd"
    path.write_bytes(b"AK:\xff\xfe\n")
    path.chmod(0o600)
    assert error_of(passwd_file=str(path), env={}) == (
        f"passwd file {path}: line 1 is not ACCESS_KEY_ID:SECRET_ACCESS_KEY (UTF-8)")


def test_passwd_file_missing(tmp_path):
    path = tmp_path / "nope"
    assert error_of(passwd_file=str(path), env={}) == (
        f"cannot read passwd file {path}: No such file or directory")


# region and endpoint

def test_region_order(home):
    aws_files(home, config="[default]\nregion = eu-central-1\n"
                           "[profile work]\nregion = ap-south-1\n")
    env = {**home, "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-north-1"}
    assert resolve_region("us-west-2", env=env) == "us-west-2"
    assert resolve_region(env=env) == "eu-west-3"
    assert resolve_region(env={**home, "AWS_DEFAULT_REGION": "eu-north-1"}) == "eu-north-1"
    assert resolve_region(env=home) == "eu-central-1"
    assert resolve_region(profile="work", env=home) == "ap-south-1"
    assert resolve_region(env={**home, "AWS_PROFILE": "work"}) == "ap-south-1"
    assert resolve_region(profile="ghost", env=home) == "us-east-1"


def test_region_default_without_files(home):
    assert resolve_region(env=home) == "us-east-1"


def test_endpoint_order(home):
    aws_files(home, config="[default]\nendpoint_url = http://global.example:9000\n"
                           "[profile nested]\nendpoint_url = http://global.example:9000\n"
                           "s3 =\n  endpoint_url = http://s3.example:9000\n"
                           "  addressing_style = path\n")
    env = {**home, "AWS_ENDPOINT_URL_S3": "http://env-s3:1", "AWS_ENDPOINT_URL": "http://env:2"}
    assert resolve_endpoint("http://opt:3", env=env) == "http://opt:3"
    assert resolve_endpoint(env=env) == "http://env-s3:1"
    assert resolve_endpoint(env={**home, "AWS_ENDPOINT_URL": "http://env:2"}) == "http://env:2"
    assert resolve_endpoint(env=home) == "http://global.example:9000"
    assert resolve_endpoint(profile="nested", env=home) == "http://s3.example:9000"


def test_endpoint_none_means_aws(home):
    assert resolve_endpoint(env=home) is None


def test_endpoint_ignore_configured(home):
    aws_files(home, config="[default]\nendpoint_url = http://global.example:9000\n")
    env = {**home, "AWS_ENDPOINT_URL": "http://env:2",
           "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert resolve_endpoint(env=env) is None
    assert resolve_endpoint("http://opt:3", env=env) == "http://opt:3"


# secrets stay secret

def test_logs_name_the_source_but_no_secret(home, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="s3erofs")
    passwd = write(tmp_path / "passwd", "PWAK:PWSECRET\n")
    aws_files(home, credentials=f"[default]\naws_access_key_id = FILEAK\n"
                                f"aws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n")
    resolve_credentials(access_key="AK", secret_key="OPTSECRET", env=home)
    resolve_credentials(passwd_file=passwd, env=home)
    resolve_credentials(env={**home, "AWS_ACCESS_KEY_ID": "ENVAK",
                             "AWS_SECRET_ACCESS_KEY": "ENVSECRET", "AWS_SESSION_TOKEN": TOKEN})
    resolve_credentials(env=home)

    assert [r.getMessage() for r in caplog.records] == [
        "credentials: command-line options",
        f"credentials: passwd file {passwd}",
        "credentials: environment (AWS_ACCESS_KEY_ID)",
        f"credentials: profile 'default' in {home['HOME']}/.aws/credentials",
    ]
    assert_no_secret(caplog.text)


def test_resolved_credentials_repr_hides_secrets(home):
    creds = resolve_credentials(env={**home, "AWS_ACCESS_KEY_ID": "ENVAK",
                                     "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN})
    assert creds.secret_key == SECRET
    assert creds.session_token == TOKEN
    for text in (str(creds), repr(creds)):
        assert "ENVAK" in text
        assert_no_secret(text)
