"""Credentials, region and endpoint, found where AWS users expect them.

Sources, first match wins (the AWS CLI's order, plus the passwd file of s3fs and mkfs.erofs):

1. explicit options (access key, secret key, session token);
2. a passwd file with one ``ACCESS_KEY_ID:SECRET_ACCESS_KEY`` line, private to its owner;
3. ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``;
4. the profile (option, else ``AWS_PROFILE``, else ``default``) in ``~/.aws/credentials``
   (section ``[NAME]``), then ``~/.aws/config`` (section ``[profile NAME]``); the files can be
   moved with ``AWS_SHARED_CREDENTIALS_FILE`` and ``AWS_CONFIG_FILE``.

As in botocore, a profile given as an option skips the environment keys.
No message or log line here ever contains a secret key or a session token.
"""

import configparser
import logging
import os
import stat
from collections.abc import Mapping

from .errors import CredentialsError
from .sign import Credentials

logger = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
PASSWD_FORMAT = "one ACCESS_KEY_ID:SECRET_ACCESS_KEY line"

# profile settings that describe credentials we cannot obtain ourselves
_UNSUPPORTED = ("role_arn", "credential_process", "sso_session", "sso_start_url",
                "web_identity_token_file")


def resolve_credentials(*, access_key: str | None = None, secret_key: str | None = None,
                        session_token: str | None = None, passwd_file: str | None = None,
                        profile: str | None = None, anonymous: bool = False,
                        env: Mapping[str, str] | None = None) -> Credentials | None:
    """Find the credentials to sign with.

    :param anonymous: ``--no-sign-request``: send unsigned requests (returns None).
    :param env: the environment (``os.environ`` when None).
    :returns: the credentials, or None only when ``anonymous``.
    :raises CredentialsError: a source is incomplete or unreadable, an explicitly named
        profile does not exist, or no source has credentials.
    """
    env = os.environ if env is None else env
    if anonymous:
        logger.info("credentials: none (unsigned requests)")
        return None

    creds = _from_options(access_key, secret_key, session_token)
    if creds is not None:
        logger.info("credentials: command-line options")
        return creds

    if passwd_file is not None:
        creds = read_passwd_file(passwd_file)
        logger.info("credentials: passwd file %s", passwd_file)
        return creds

    if profile is None:
        creds = _from_env(env)
        if creds is not None:
            logger.info("credentials: environment (AWS_ACCESS_KEY_ID)")
            return creds

    return _from_profile(profile, env)


def _from_options(access_key, secret_key, session_token) -> Credentials | None:
    if not access_key and not secret_key:
        if session_token:
            raise CredentialsError(
                "a session token was given without an access key and a secret key")
        return None

    if not access_key or not secret_key:
        missing = "secret key" if access_key else "access key"
        raise CredentialsError(f"an access key option needs both keys: the {missing} is missing")
    return Credentials(access_key, secret_key, session_token or None)


def _from_env(env: Mapping[str, str]) -> Credentials | None:
    access_key = env.get("AWS_ACCESS_KEY_ID", "")
    secret_key = env.get("AWS_SECRET_ACCESS_KEY", "")
    if not access_key and not secret_key:
        return None

    if not access_key or not secret_key:
        present, missing = (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if access_key
                            else ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"))
        raise CredentialsError(f"{present} is set but {missing} is not")
    return Credentials(access_key, secret_key, env.get("AWS_SESSION_TOKEN") or None)


def read_passwd_file(path: str) -> Credentials:
    """Read a passwd file (s3fs / mkfs.erofs style): one ``ACCESS_KEY_ID:SECRET_ACCESS_KEY``.

    Blank lines and lines starting with ``#`` are ignored. The key pair is split at the first
    ``:``. The file must not be accessible to group or others.

    :raises CredentialsError: naming the file (never its content) when it cannot be read, is
        not private, or does not hold exactly one key pair.
    """
    path = os.path.expanduser(path)
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read()
    except OSError as e:
        raise CredentialsError(f"cannot read passwd file {path}: {e.strerror}") from None

    # as s3fs does: a key readable by other users is a leaked key, refuse to use it
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialsError(
            f"passwd file {path} is accessible by group or others (mode "
            f"{stat.S_IMODE(mode):04o}); make it private with: chmod 600 {path}")

    lines = [(n, line.strip()) for n, line in enumerate(data.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith(b"#")]
    if len(lines) != 1:
        raise CredentialsError(
            f"passwd file {path} must hold {PASSWD_FORMAT}, found {len(lines)} such lines")

    lineno, line = lines[0]
    access_key, _, secret_key = line.partition(b":")
    try:
        access_key, secret_key = access_key.decode("utf-8"), secret_key.decode("utf-8")
    except UnicodeDecodeError:
        access_key = secret_key = ""
    if not access_key or not secret_key:
        raise CredentialsError(
            f"passwd file {path}: line {lineno} is not ACCESS_KEY_ID:SECRET_ACCESS_KEY (UTF-8)")
    return Credentials(access_key.strip(), secret_key.strip())


def _from_profile(profile: str | None, env: Mapping[str, str]) -> Credentials:
    name, explicit = _profile_name(profile, env)
    creds_path, config_path = aws_config_paths(env)
    sections = [(creds_path, _section(creds_path, name)),
                (config_path, _section(config_path, f"profile {name}"))]
    if name == "default":
        sections.append((config_path, _section(config_path, "default")))
    found = [(path, section) for path, section in sections if section is not None]

    for path, section in found:
        creds = _keys_in_section(path, name, section)
        if creds is not None:
            logger.info("credentials: profile %r in %s", name, path)
            return creds

    where = f"{creds_path} (section [{name}]) or {config_path} (section [profile {name}])"
    if explicit and not found:
        origin = "--profile" if profile is not None else "AWS_PROFILE"
        raise CredentialsError(f"profile {name!r} (from {origin}) not found in {where}")
    for path, section in found:
        _refuse_unsupported(path, name, section)

    env_note = ("not used with an explicit profile" if profile is not None
                else "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY not set")
    raise CredentialsError(
        "no AWS credentials found; looked at: access key options (none given), passwd file "
        f"(none given), environment ({env_note}), profile {name!r} in {where} (no "
        "aws_access_key_id there). For a public bucket use --no-sign-request.")


def _profile_name(profile: str | None, env: Mapping[str, str]) -> tuple[str, bool]:
    if profile:
        return profile, True
    if env.get("AWS_PROFILE"):
        return env["AWS_PROFILE"], True
    return "default", False


def _keys_in_section(path: str, name: str, section: Mapping[str, str]) -> Credentials | None:
    access_key = section.get("aws_access_key_id", "").strip()
    secret_key = section.get("aws_secret_access_key", "").strip()
    if not access_key and not secret_key:
        return None

    if not access_key or not secret_key:
        missing = "aws_secret_access_key" if access_key else "aws_access_key_id"
        raise CredentialsError(f"profile {name!r} in {path} has no {missing}")
    token = section.get("aws_session_token", "").strip() or None
    return Credentials(access_key, secret_key, token)


def _refuse_unsupported(path: str, name: str, section: Mapping[str, str]) -> None:
    setting = next((key for key in _UNSUPPORTED if section.get(key)), None)
    if setting is not None:
        raise CredentialsError(
            f"profile {name!r} in {path} uses {setting}, which s3erofs does not support; "
            f"export keys first, e.g. eval \"$(aws configure export-credentials --profile "
            f"{name} --format env)\"")


def resolve_region(region: str | None = None, profile: str | None = None,
                   env: Mapping[str, str] | None = None) -> str:
    """Pick the region: option, ``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile's
    ``region`` in the config file, else ``us-east-1``.
    """
    env = os.environ if env is None else env
    for value in (region, env.get("AWS_REGION"), env.get("AWS_DEFAULT_REGION")):
        if value:
            return value.strip()

    settings = _profile_settings(profile, env)
    return settings.get("region", "").strip() or DEFAULT_REGION


def resolve_endpoint(endpoint_url: str | None = None, profile: str | None = None,
                     env: Mapping[str, str] | None = None) -> str | None:
    """Pick the endpoint URL: option, ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, the
    profile's nested ``s3 = endpoint_url = ...``, the profile's ``endpoint_url``.

    ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`` leaves only the option, as in the AWS CLI.

    :returns: the URL, or None for AWS itself (``https://s3.REGION.amazonaws.com``).
    """
    env = os.environ if env is None else env
    if endpoint_url:
        return endpoint_url.strip()
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return None

    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        if env.get(name):
            return env[name].strip()

    settings = _profile_settings(profile, env)
    nested = _nested(settings.get("s3", "")).get("endpoint_url")
    return nested or settings.get("endpoint_url", "").strip() or None


def _nested(value: str) -> dict[str, str]:
    # "s3 =\n  endpoint_url = URL": configparser keeps the indented lines as one value
    pairs = (line.partition("=") for line in value.splitlines())
    return {name.strip().lower(): v.strip() for name, sep, v in pairs if sep}


def _profile_settings(profile: str | None, env: Mapping[str, str]) -> Mapping[str, str]:
    name, _ = _profile_name(profile, env)
    config_path = aws_config_paths(env)[1]
    section = _section(config_path, f"profile {name}")
    if section is None and name == "default":
        section = _section(config_path, "default")
    return section if section is not None else {}


def aws_config_paths(env: Mapping[str, str]) -> tuple[str, str]:
    """The shared credentials file and the config file, as the AWS CLI finds them."""
    creds = env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
    config = env.get("AWS_CONFIG_FILE") or "~/.aws/config"
    return _expand_home(creds, env), _expand_home(config, env)


def _expand_home(path: str, env: Mapping[str, str]) -> str:
    if env.get("HOME") and (path == "~" or path.startswith("~/")):
        return env["HOME"] + path[1:]
    return os.path.expanduser(path)


def _section(path: str, name: str) -> Mapping[str, str] | None:
    """Return one section of an INI file, or None when the file or section is missing."""
    # no interpolation: secrets may contain "%"; no strictness: the last duplicate wins, as in
    # botocore
    parser = configparser.ConfigParser(interpolation=None, strict=False, default_section="\0")
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f, source=path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CredentialsError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise CredentialsError(f"{path} is not UTF-8 (byte offset {e.start})") from None
    except configparser.ParsingError as e:
        # the offending line may hold a secret: name its number only
        lineno = getattr(e, "lineno", None) or e.errors[0][0]
        raise CredentialsError(
            f"{path}: line {lineno} is not INI syntax ([section] or name = value)") from None
    return dict(parser[name]) if parser.has_section(name) else None
