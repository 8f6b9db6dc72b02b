"""What the first chain loads: nothing it does not use.

* A plain answer is rendered without markdown-it, and exactly as markdown-it renders it.
* Provider clients share one TLS context whose CA bundle loads at the first TLS handshake: a
  plain-http server never loads it, an https server is verified against it (SSL_CERT_FILE or
  the OS's CA bundle, as httpx2 does), over a real TLS loopback server.
* A chain in a fresh interpreter imports neither markdown-it nor ipywidgets, and loads no CAs
  (the OS's bundle, ~150 certificates, is the cost).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_magic
from llm_magic import _runtime
from llm_magic import _tls as tls
from llm_magic.errors import ProviderError
from llm_magic.notebook import values
from tests.servers import OpenAIServer

ROOT = Path(__file__).resolve().parents[2]

_PLAIN = [
    "The answer is 42.",
    "",
    'one line\nand its soft break\n\nA second paragraph, "quoted", it\'s fine.',
    "\n\nleading and trailing blank lines\n\n\n",
    "Unicode: café, naïve, 東京, emoji 🎉; punctuation (a), b: c / d? e, f.",
    "ends with a full stop.\n",
]
_MARKDOWN = [
    "**bold**",
    "- a list",
    "1. first",
    "# heading",
    "line  \nhard break",
    "    indented code",
    "a | b\n--- | ---\n1 | 2",
    "Tom & Jerry &copy;",
    "<b>raw</b>",
    "text\n===",
    "~~gone~~",
    "a\\*b",
    "`code`",
    "[link](http://x.y)",
    "tab\tin text",
]


def _markdown_it(text: str) -> str:
    return values.safe_html(values._markdown().render(text))


@pytest.mark.parametrize("text", _PLAIN)
def test_plain_text_takes_the_short_path_and_matches_markdown_it(text: str) -> None:
    assert values._plain_paragraphs(text) is not None
    assert values.markdown_html(text) == _markdown_it(text)


@pytest.mark.parametrize("text", _MARKDOWN)
def test_markdown_syntax_goes_to_markdown_it(text: str) -> None:
    assert values._plain_paragraphs(text) is None
    assert values.markdown_html(text) == _markdown_it(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80))
def test_any_text_renders_as_markdown_it_renders_it(text: str) -> None:
    """Whatever the short path accepts, it renders as markdown-it does."""
    assert values.markdown_html(text) == _markdown_it(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b c", " ", "\n", "\n\n", '"', "'", ".", "é", "9"])))
def test_paragraph_shapes_render_as_markdown_it_renders_them(parts: list[str]) -> None:
    text = "".join(parts)
    assert values.markdown_html(text) == _markdown_it(text)


# -- the TLS context -------------------------------------------------------------------------------


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm_magic test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path):
    """The loopback OpenAI server behind TLS, with its certificate's path."""
    cert_file, key_file = _self_signed(tmp_path)
    server = OpenAIServer().start()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    httpd = server._httpd
    assert httpd is not None
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    try:
        yield server, cert_file
    finally:
        server.close()


@pytest.fixture
def fresh_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process-wide TLS context for this test (the shared one loads its CAs once)."""
    monkeypatch.delitem(_runtime._shared, "ssl_context", raising=False)


def _https_url(server: OpenAIServer) -> str:
    return server.base_url.replace("http://", "https://")


async def test_https_is_verified_against_ssl_cert_file(
    tls_server, fresh_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert_file = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    server.push("hello over TLS")
    result = await llm_magic.chain(
        "hi", model="openai-chat:gpt-4o-mini", base_url=_https_url(server), api_key="sk-test-123"
    )
    assert result.text == "hello over TLS"
    assert tls.shared_ssl_context()._loaded


async def test_https_with_an_unknown_certificate_is_refused(
    tls_server, fresh_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    model = llm_magic.get_async_model(
        "openai-chat:gpt-4o-mini",
        base_url=_https_url(server),
        api_key="sk-test-123",
        retry=llm_magic.RetryPolicy(max_retries=0),
    )
    with pytest.raises(ProviderError, match="CERTIFICATE_VERIFY_FAILED"):
        await model.prompt("hi")
    await model.aclose()
    assert tls.shared_ssl_context()._loaded  # the OS's bundle, which does not know the cert
    assert server.requests == []


@pytest.mark.skipif(
    sys.platform in ("win32", "darwin"), reason="the OS verifies there (truststore)"
)
def test_the_lazy_context_trusts_the_certificates_httpx2_trusts(
    fresh_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx2 verifies against the OS's CA bundle, not certifi's: the lazy context loads the
    same certificates as `httpx2.create_ssl_context()`, only later."""
    import httpx2

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    expected = httpx2.create_ssl_context().get_ca_certs(binary_form=True)
    if not expected:
        pytest.skip("this OS has no CA file (a hashed directory only)")
    context = tls.shared_ssl_context()
    assert context.get_ca_certs() == []  # nothing loaded before a handshake
    context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.org")
    assert sorted(context.get_ca_certs(binary_form=True)) == sorted(expected)


def test_clients_share_one_context() -> None:
    assert tls.shared_ssl_context() is tls.shared_ssl_context()
    context = tls.shared_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


# -- what a chain imports --------------------------------------------------------------------------

_CHAIN = textwrap.dedent(
    """
    import asyncio, sys
    import llm_magic
    from llm_magic import _tls as tls
    from llm_magic.notebook import values
    from tests.servers import OpenAIServer

    server = OpenAIServer().start()
    server.push("The answer is 42.")
    result = asyncio.run(llm_magic.chain(
        "hi", model="openai-chat:gpt-4o-mini", base_url=server.base_url, api_key="sk-test-123"))
    html = values.markdown_html(result.text)
    server.close()
    loaded = [m for m in ("markdown_it", "ipywidgets", "anywidget") if m in sys.modules]
    print("LOADED", loaded, tls.shared_ssl_context()._loaded, "<p>The answer is 42.</p>" in html)
    """
)


def test_a_plain_http_chain_loads_no_markdown_widgets_or_ca_bundle() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("SSL_CERT_FILE", None)
    out = subprocess.run(
        [sys.executable, "-c", _CHAIN], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "LOADED [] False True" in out.stdout, out.stdout + out.stderr
