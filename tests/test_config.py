"""Configuration: defaults, TOML, environment overrides, errors naming the key."""

import pytest

from rtmpgop import config
from rtmpgop.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return str(p)


def test_defaults_follow_the_field():
    c = config.load(env={})
    assert (c.rtmp_port, c.rtsp_port, c.http_port, c.ws_port) == (1935, 8554, 8888, 8889)
    assert c.sources == ()


def test_file_then_env_then_overrides(tmp_path):
    f = write(tmp_path, """
rtmp_port = 1936
http_port = 9000
[paths."cams/door"]
source = "rtsp://admin:pw@10.0.0.5:554/stream1"
transport = "udp"
on_demand = true
idle_timeout = 3
""")
    c = config.load(f, env={"RTMPGOP_HTTP_PORT": "9100", "RTMPGOP_WS_ALLOWED_ORIGINS": "https://a, https://b"},
                    overrides={"rtsp_port": 9554, "ws_port": None})
    assert c.rtmp_port == 1936 and c.http_port == 9100 and c.rtsp_port == 9554 and c.ws_port == 8889
    assert c.ws_allowed_origins == ("https://a", "https://b")
    (s,) = c.sources
    assert (s.path, s.transport, s.on_demand, s.idle_timeout) == ("cams/door", "udp", True, 3.0)


@pytest.mark.parametrize("text, key", [
    ("rtmp_prot = 1", "rtmp_prot"),
    ("rtmp_port = 'x'", "rtmp_port"),
    ("rtmp_port = 70000", "rtmp_port"),
    ('[paths.a]\nsource = "http://x"', "paths.a.source"),
    ('[paths.a]\nsource = "rtsp://x"\ntransport = "sctp"', "paths.a.transport"),
    ('[paths.a]\nsource = "rtsp://x"\ncolour = 1', "paths.a.colour"),
    ('[paths.a]\nsource = "rtsp://x"\non_demand = "yes"', "paths.a.on_demand"),
    ("rtmp_port = [", "--config"),
    ('[paths.a]\nsource = "rtsps://x"\ntls_verify = "no"', "paths.a.tls_verify"),
    ('[paths.a]\nsource = "rtsp://x"\nstall_timeout = 0', "paths.a.stall_timeout"),
    ('hls = "sometimes"', "hls"),
])
def test_invalid_config_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, text), env={})
    assert e.value.key == key


def test_env_error_names_variable():
    with pytest.raises(ConfigError) as e:
        config.load(env={"RTMPGOP_RTSP_PORT": "many"})
    assert e.value.key == "RTMPGOP_RTSP_PORT"


def test_cli_reports_config_error(tmp_path, capsys):
    from rtmpgop.cli import main
    assert main(["--config", write(tmp_path, "bogus = 1")]) == 2
    assert "config bogus: unknown key" in capsys.readouterr().err


def test_rtsp_auth_keys(tmp_path):
    c = config.load(env={})
    assert (c.rtsp_publish_user, c.rtsp_read_user, c.rtsp_auth_basic) == ("", "", False)
    f = write(tmp_path, 'rtsp_publish_user = "cam"\nrtsp_publish_password = "pw"\n'
                        'rtsp_auth_basic = true\n')
    c = config.load(f, env={"RTMPGOP_RTSP_READ_USER": "viewer",
                            "RTMPGOP_RTSP_READ_PASSWORD": "s3cret"})
    assert (c.rtsp_publish_user, c.rtsp_publish_password) == ("cam", "pw")
    assert (c.rtsp_read_user, c.rtsp_read_password, c.rtsp_auth_basic) == ("viewer", "s3cret", True)
    assert config.load(env={"RTMPGOP_RTSP_AUTH_BASIC": "no"}).rtsp_auth_basic is False


@pytest.mark.parametrize("text, env, key", [
    ('rtsp_publish_user = "cam"', {}, "rtsp_publish_password"),
    ("", {"RTMPGOP_RTSP_READ_PASSWORD": "x"}, "rtsp_read_user"),
    ('rtsp_auth_basic = "maybe"', {}, "rtsp_auth_basic"),
    ("rtsp_read_user = 5", {}, "rtsp_read_user"),
    ("", {"RTMPGOP_RTSP_AUTH_BASIC": "2"}, "RTMPGOP_RTSP_AUTH_BASIC"),
])
def test_rtsp_auth_errors_name_the_key(tmp_path, text, env, key):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, text), env=env)
    assert e.value.key == key


def test_hls_mode(tmp_path):
    assert config.load(env={}).hls == "always"
    assert config.load(write(tmp_path, 'hls = "on_demand"'), env={}).hls == "on_demand"
    assert config.load(env={"RTMPGOP_HLS": "off"}).hls == "off"


def test_merge_delays(tmp_path):
    assert config.load(write(tmp_path, "play_merge_ms = 80"), env={}).play_merge_ms == 80
    assert config.load(env={"RTMPGOP_RTMP_PUBLISH_MERGE_MS": "100"}).rtmp_publish_merge_ms == 100
    for key, value in (("play_merge_ms", 1001), ("rtmp_publish_merge_ms", -1)):
        with pytest.raises(ConfigError) as e:
            config.load(write(tmp_path, f"{key} = {value}"), env={})
        assert e.value.key == key
