"""The web admin in a real browser (headless Debian chromium + chromedriver, Selenium).

One server and one browser for the module; the tests run in order (login first, logout
last) and each leaves the browser logged in for the next. Every wait is an explicit
WebDriverWait of at most 10 s, or a bounded socket poll.

With BERTH_SCREENSHOTS=<dir>, the last test saves a PNG of every view (1280x800, plus a
phone-width and a dark-scheme one) from a second server filled with realistic data.
"""
from __future__ import annotations

import os
import smtplib
import ssl
import time
from pathlib import Path

import pytest

from conftest import (ADMIN_PASSWORD, _port_is_free, ALICE_PW, IP2, IP3, Berth, add_ip, add_ips, cert_subject, create_port,
                      free_port, make_cert, set_ip, tls_client_context)

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMEDRIVER):
    pytest.skip(f"{CHROMEDRIVER} is not installed (apt-get install chromium chromium-driver)", allow_module_level=True)
os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT = 10
XSS_NAME = "<img src=x onerror=alert(1)>"
TITLES = {"ip-addresses": "IP Addresses", "ports": "Ports", "certificates": "Certificates", "domains": "Domains",
          "users": "Users", "queue": "Queue", "listeners": "Listeners"}


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """One server for the module, with 127.0.0.2 and 127.0.0.3 in its list."""
    b = Berth(tmp_path_factory.mktemp("web") / "data")
    b.start()
    add_ips(b)
    yield b
    rc = b.stop()
    b.kill()
    assert rc == 0, f"berth exit code on SIGTERM was {rc}:\n{b.log_tail()}"


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    d.set_page_load_timeout(30)
    try:
        yield d
    finally:
        d.quit()


# ------------------------------------------------------------------ helpers


def wait(d, cond, timeout: float = WAIT, msg: str = ""):
    return WebDriverWait(d, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(cond, msg)


def login(d, b: Berth, view: str = "ip-addresses", password: str | None = None):
    d.get(f"{b.admin_url}/#/{view}")
    pw = wait(d, EC.visibility_of_element_located((By.ID, "password")), msg="login form")
    pw.clear()
    pw.send_keys(password or b.password, Keys.ENTER)
    wait_view(d, view)


def logged_in(d, b: Berth) -> bool:
    return d.current_url.startswith(b.admin_url) and bool(d.find_elements(By.CSS_SELECTOR, "nav.side"))


def wait_view(d, view: str):
    """Until the view's data are on screen (#view[data-ready=view])."""
    wait(d, lambda d: d.find_element(By.ID, "view").get_attribute("data-ready") == view, msg=f"view {view} ready")
    assert d.find_element(By.CSS_SELECTOR, "#view h1").text == TITLES[view]


def open_view(d, b: Berth, view: str):
    """Shows `view` with fresh data: a hash change, or a reload when it is the current view."""
    if not logged_in(d, b):
        login(d, b, view)
        return
    if d.execute_script("return location.hash") == f"#/{view}":
        d.refresh()
    else:
        d.execute_script("location.hash = arguments[0]", f"#/{view}")
    wait_view(d, view)


def row(d, text: str):
    """The list row with a cell (or a cell's first line) whose text is exactly `text`, or None."""
    return d.execute_script("""
        for (const tr of document.querySelectorAll('#view table.list tbody tr'))
          for (const td of tr.cells)
            if (td.textContent === arguments[0] || (td.querySelector('.name') || {}).textContent === arguments[0]) return tr;
        return null;""", text)


def wait_row(d, text: str):
    return wait(d, lambda d: row(d, text), msg=f"row {text!r}")


def toolbar(d, action: str):
    btn = d.find_element(By.CSS_SELECTOR, f'#view [role=toolbar] button[data-action="{action}"]')
    wait(d, lambda _: btn.is_enabled(), msg=f"toolbar {action} enabled")
    btn.click()


def dialog(d):
    return wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open]")), msg="dialog open")


def wait_dialog_closed(d):
    wait(d, lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"), msg="dialog closed")


def submit(dlg):
    dlg.find_element(By.CSS_SELECTOR, ".dialog-actions button[type=submit]").click()


def no_alert(d):
    try:
        text = d.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"a JavaScript alert is open: {text!r}")


def session_cookie(d) -> dict:
    cookies = [c for c in d.get_cookies() if c["name"].endswith("berth_session")]
    assert len(cookies) == 1, d.get_cookies()
    return cookies[0]


def by_label(root, text: str):
    """The control whose <label> reads `text`."""
    label = root.find_element(By.XPATH, f".//label[normalize-space()='{text}']")
    return root.find_element(By.ID, label.get_attribute("for"))


def end_session(d, b: Berth) -> None:
    """Ends the browser's session from another client (as a logout in another tab would)."""
    cookie = session_cookie(d)
    jar = {"Cookie": f"{cookie['name']}={cookie['value']}"}
    status, _, grant = b.http("GET", "/api/v1/session", None, jar)
    assert status == 200, grant
    status, _, js = b.http("DELETE", "/api/v1/session", None, {**jar, "X-CSRF-Token": grant["csrfToken"]})
    assert status == 204, js


# Records the page's API requests: [path, X-Berth-Background header, method].
RECORD_FETCH = """
    window.__reqs = [];
    if (!window.__fetch) window.__fetch = window.fetch;
    window.fetch = (url, init) => {
      const hd = (init && init.headers) || {};
      window.__reqs.push([String(url), hd['X-Berth-Background'] || '', (init && init.method) || 'GET']);
      return window.__fetch(url, init);
    };"""


def requests_made(d) -> list[list[str]]:
    return d.execute_script("return window.__reqs || []")


def relogin_in_overlay(d, password: str) -> None:
    overlay = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog#relogin[open]")), msg="log-in-again dialog")
    pw = by_label(overlay, "Password")
    pw.clear()
    pw.send_keys(password, Keys.ENTER)
    wait(d, lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog#relogin"), msg="log-in-again dialog closed")


def port_by_name(b: Berth, name: str) -> dict | None:
    return next((p for p in b.ports() if p["name"] == name), None)


def smtp_banner(host: str, port: int, tls: bool = False, deadline: float = 5.0):
    """(code, message, peer certificate DER or None) of the first good 220, polled until `deadline`."""
    end = time.monotonic() + deadline
    last = None
    for _ in range(200):
        try:
            # SMTP_SSL connects in its constructor (the handshake needs the host) and raises
            # SMTPConnectError unless the greeting is 220.
            s = smtplib.SMTP_SSL(host, port, context=tls_client_context(), timeout=5) if tls else smtplib.SMTP(timeout=5)
            try:
                code, msg = (220, b"") if tls else s.connect(host, port)
                der = s.sock.getpeercert(binary_form=True) if tls else None
                if code == 220:
                    s.quit()
                    return code, msg, der
                last = (code, msg)
            finally:
                s.close()
        except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
            last = e
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    raise AssertionError(f"no 220 from {host}:{port} (tls={tls}) within {deadline}s: {last!r}")


# ------------------------------------------------------------------ tests


def test_login(web, driver):
    d = driver
    d.get(f"{web.admin_url}/#/ports")
    pw = wait(d, EC.visibility_of_element_located((By.ID, "password")))
    # The label names the field; the page has no inline script or style to need.
    assert d.find_element(By.CSS_SELECTOR, "label[for=password]").text == "Password"
    pw.send_keys("not-the-password", Keys.ENTER)
    err = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "#password + .field-error")))
    assert "wrong password" in err.text.lower()
    assert pw.get_attribute("aria-invalid") == "true"
    assert not d.find_elements(By.CSS_SELECTOR, "nav.side")
    pw.clear()
    pw.send_keys(ADMIN_PASSWORD, Keys.ENTER)
    # The hash survives the login: the admin lands on the view asked for, focus on its heading.
    wait_view(d, "ports")
    wait(d, lambda d: d.execute_script("return document.activeElement === document.querySelector('#view h1')"),
         msg="focus on the view's heading after the login")
    assert d.find_element(By.CSS_SELECTOR, "header.top #logout").is_displayed()
    nav = d.find_element(By.CSS_SELECTOR, "nav.side")
    for title in TITLES.values():
        assert nav.find_element(By.XPATH, f".//a[span[normalize-space()='{title}']]")
    # Counts arrive in the navigation badges (the module's server lists 127.0.0.2 and .3).
    ips = len(web.ips())
    wait(d, lambda d: d.find_element(By.CSS_SELECTOR, 'a[data-view="ip-addresses"] .count').text == str(ips))
    # A reload keeps the session and the view.
    d.refresh()
    wait_view(d, "ports")
    no_alert(d)


def test_create_port_and_see_it_listen(web, driver):
    d = driver
    number = free_port()
    open_view(d, web, "ports")
    toolbar(d, "new")
    dlg = dialog(d)
    Select(dlg.find_element(By.ID, "port-protocol")).select_by_value("smtp")
    Select(dlg.find_element(By.ID, "port-encryption")).select_by_value("none")
    assert not dlg.find_element(By.ID, "port-cert").is_displayed()  # no certificate without SSL/TLS
    dlg.find_element(By.ID, "port-name").send_keys("Web SMTP")
    dlg.find_element(By.ID, "port-number").send_keys(str(number))
    dlg.find_element(By.CSS_SELECTOR, f'#port-assigned input[value="{IP2}"]').click()
    submit(dlg)
    wait_dialog_closed(d)
    wait(d, lambda d: str(number) in wait_row(d, "Web SMTP").text and IP2 in row(d, "Web SMTP").text)
    port = port_by_name(web, "Web SMTP")
    assert port and port["port"] == number and port["assignedTo"] == [IP2] and port["encryption"] == "none"

    # Listeners: the row turns "listening" by polling, no reload.
    d.execute_script("location.hash = '#/listeners'")
    wait_view(d, "listeners")
    d.execute_script("window.__sameDocument = 42")
    state = f'tr[data-key="{IP2}|{number}"] td.state'
    wait(d, lambda d: any(e.text == "listening" for e in d.find_elements(By.CSS_SELECTOR, state)),
         msg="listener on 127.0.0.2 listening")
    code, msg, _ = smtp_banner(IP2, number)
    assert code == 220
    # A change made elsewhere (the API) shows within 2 s in the same document.
    set_ip(web, IP3, ports=[port["id"]])
    state3 = f'tr[data-key="{IP3}|{number}"] td.state'
    wait(d, lambda d: any(e.text == "listening" for e in d.find_elements(By.CSS_SELECTOR, state3)), timeout=3,
         msg="listener on 127.0.0.3 shown within 2 s")
    assert d.execute_script("return window.__sameDocument") == 42
    set_ip(web, IP3, ports=[])
    wait(d, lambda d: not d.find_elements(By.CSS_SELECTOR, state3), timeout=3, msg="listener on .3 gone")


def test_edit_port_to_ssl_with_library_certificate(web, driver, tmp_path):
    d = driver
    cert, key = make_cert(tmp_path, "web-admin.test.local")
    lib = web.ok("POST", "/api/v1/certificates", {"certificatePath": str(cert), "privateKeyPath": str(key)})
    port = port_by_name(web, "Web SMTP")
    assert port, "test_create_port_and_see_it_listen makes this port"
    open_view(d, web, "ports")
    ActionChains(d).double_click(wait_row(d, "Web SMTP")).perform()
    dlg = dialog(d)
    assert dlg.find_element(By.ID, "port-name").get_attribute("value") == "Web SMTP"
    Select(dlg.find_element(By.ID, "port-encryption")).select_by_value("ssl")
    assert dlg.find_element(By.ID, "port-cert").is_displayed()
    assert not dlg.find_element(By.ID, "port-tls-required").is_displayed()  # SSL: no STARTTLS to require
    Select(dlg.find_element(By.ID, "port-cert-library")).select_by_value(lib["id"])
    assert dlg.find_element(By.ID, "port-cert-path").get_attribute("value") == lib["certificatePath"]
    assert dlg.find_element(By.ID, "port-key-path").get_attribute("value") == lib["privateKeyPath"]
    submit(dlg)
    wait_dialog_closed(d)
    wait(d, lambda d: "SSL" in wait_row(d, "Web SMTP").text and "CN=web-admin.test.local" in row(d, "Web SMTP").text,
         msg="the row shows SSL and the certificate")
    saved = web.port(port["id"])
    assert saved["encryption"] == "ssl" and saved["certificatePath"] == lib["certificatePath"]
    assert saved["assignedTo"] == [IP2]  # the form kept the assignment it showed
    code, _, der = smtp_banner(IP2, port["port"], tls=True)
    assert code == 220
    assert "web-admin.test.local" in cert_subject(der)


def test_delete_two_ports_at_once(web, driver):
    d = driver
    one = create_port(web, "Doomed One")
    two = create_port(web, "Doomed Two")
    keep = create_port(web, "Kept Three")
    open_view(d, web, "ports")
    for name in ("Doomed One", "Doomed Two"):
        wait_row(d, name).find_element(By.CSS_SELECTOR, "td.sel input[type=checkbox]").click()
    toolbar(d, "delete")
    dlg = dialog(d)
    items = [li.text for li in dlg.find_elements(By.CSS_SELECTOR, ".confirm-list li")]
    assert len(items) == 2 and any("Doomed One" in i for i in items) and any("Doomed Two" in i for i in items), items
    dlg.find_element(By.CSS_SELECTOR, "button.danger").click()
    wait_dialog_closed(d)
    wait(d, lambda d: row(d, "Doomed One") is None and row(d, "Doomed Two") is None, msg="rows gone")
    assert row(d, "Kept Three") is not None
    ids = {p["id"] for p in web.ports()}
    assert one["id"] not in ids and two["id"] not in ids and keep["id"] in ids


def test_conflict_shown_inline_before_saving(web, driver):
    d = driver
    number = free_port()
    a = create_port(web, "Clash A", port=number)
    b = create_port(web, "Clash B", port=number)
    before = web.ip(IP3)["ports"]
    open_view(d, web, "ip-addresses")
    ActionChains(d).double_click(wait_row(d, IP3)).perform()
    dlg = dialog(d)
    assert dlg.find_element(By.CSS_SELECTOR, "input[readonly]").get_attribute("value") == IP3
    for p in (a, b):
        box = dlg.find_element(By.CSS_SELECTOR, f'#ip-ports input[value="{p["id"]}"]')
        label = dlg.find_element(By.CSS_SELECTOR, f'label[for="{box.get_attribute("id")}"]').text
        assert p["name"] in label and str(number) in label and "SMTP" in label
        box.click()
    # The dry run answers while the admin ticks: the message sits right after the port list.
    err = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open] #ip-ports + .field-error")),
               msg="conflict shown before saving")
    assert str(number) in err.text and "Clash" in err.text, err.text
    assert web.ip(IP3)["ports"] == before  # nothing saved yet
    submit(dlg)
    err = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open] #ip-ports + .field-error")))
    assert str(number) in err.text
    assert d.find_elements(By.CSS_SELECTOR, "dialog[open]"), "a refused save keeps the dialog open"
    for p in (a, b):
        assert dlg.find_element(By.CSS_SELECTOR, f'#ip-ports input[value="{p["id"]}"]').is_selected()
    assert web.ip(IP3)["ports"] == before
    dlg.find_element(By.CSS_SELECTOR, "#ip-ports input").send_keys(Keys.ESCAPE)  # Escape closes
    wait_dialog_closed(d)
    web.ok("POST", "/api/v1/ports/delete", {"ids": [a["id"], b["id"]]})


def test_port_name_is_text_not_html(web, driver):
    d = driver
    port = create_port(web, XSS_NAME)
    open_view(d, web, "ports")
    r = wait_row(d, XSS_NAME)
    assert r.find_element(By.CSS_SELECTOR, ".name").text == XSS_NAME
    assert not d.find_elements(By.CSS_SELECTOR, "#view table img")
    assert not d.find_elements(By.CSS_SELECTOR, "img")
    no_alert(d)
    # The edit dialog and the delete confirmation show it as text too.
    ActionChains(d).double_click(r).perform()
    dlg = dialog(d)
    assert dlg.find_element(By.ID, "port-name").get_attribute("value") == XSS_NAME
    assert XSS_NAME in dlg.find_element(By.CSS_SELECTOR, "h2").text
    dlg.find_element(By.ID, "port-name").send_keys(Keys.ESCAPE)
    wait_dialog_closed(d)
    assert not d.find_elements(By.CSS_SELECTOR, "img")
    no_alert(d)
    web.ok("DELETE", f"/api/v1/ports/{port['id']}")


def test_domain_outbound_specific_address(web, driver):
    d = driver
    web.ok("POST", "/api/v1/domains", {"name": "web.example"}, statuses=(201,))
    open_view(d, web, "domains")
    ActionChains(d).double_click(wait_row(d, "web.example")).perform()
    dlg = dialog(d)
    single = dlg.find_element(By.ID, "out-ipv4-address")
    assert not single.is_displayed()  # only with "Specific address"
    Select(dlg.find_element(By.ID, "out-ipv4-mode")).select_by_value("address")
    wait(d, lambda _: single.is_displayed())
    options = [o.get_attribute("value") for o in Select(single).options]
    assert "127.0.0.1" in options and all(":" not in o for o in options)  # IPv4 only
    Select(single).select_by_value("127.0.0.1")
    # The DKIM records to publish are in the same dialog, each with its Copy button.
    wait(d, lambda d: dlg.find_elements(By.CSS_SELECTOR, ".dkim textarea"), msg="DKIM records")
    assert "v=DKIM1" in dlg.find_element(By.CSS_SELECTOR, ".dkim textarea").get_attribute("value")
    submit(dlg)
    wait_dialog_closed(d)
    dom = web.ok("GET", "/api/v1/domains/web.example")
    assert dom["outbound"]["ipv4"] == {"mode": "address", "addresses": ["127.0.0.1"]}, dom
    assert dom["outbound"]["ipv6"]["mode"] == "system"
    wait(d, lambda d: "Specific address: 127.0.0.1" in wait_row(d, "web.example").text)


def test_csrf_cookie_and_security_headers(web, driver):
    d = driver
    if not logged_in(d, web):
        login(d, web)
    cookie = session_cookie(d)
    assert cookie["httpOnly"] is True
    assert cookie.get("sameSite") == "Strict"
    jar = {"Cookie": f"{cookie['name']}={cookie['value']}"}
    body = {"name": "CSRF probe", "protocol": "smtp", "encryption": "none", "port": free_port()}
    status, _, js = web.http("POST", "/api/v1/ports", body, jar)
    assert status == 403 and js["error"]["code"] == "csrf", (status, js)
    assert port_by_name(web, "CSRF probe") is None
    status, _, grant = web.http("GET", "/api/v1/session", None, jar)
    assert status == 200 and grant["csrfToken"], grant
    status, _, js = web.http("POST", "/api/v1/ports", body, {**jar, "X-CSRF-Token": "x" + grant["csrfToken"]})
    assert status == 403
    status, _, js = web.http("POST", "/api/v1/ports", body, {**jar, "X-CSRF-Token": grant["csrfToken"]})
    assert status == 201, js
    web.ok("DELETE", f"/api/v1/ports/{js['id']}")
    status, headers, page = web.http("GET", "/")
    assert status == 200 and b"/js/main.js" in page
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                      "object-src 'none'"):
        assert directive in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    # The page ran under that policy without a violation logged.
    logs = [e["message"] for e in d.get_log("browser")]
    assert not [m for m in logs if "Content Security Policy" in m], logs


def test_ports_list_of_500(web, driver):
    """500 ports all show, and select-all covers them. How fast is bench/web-admin's to say:
    tests never assert wall-clock times."""
    d = driver
    have = len(web.ports())
    base = free_port()
    made = []
    for i in range(500 - have):
        st, js = web.api("POST", "/api/v1/ports", {"name": f"Bulk {i:03d}", "protocol": "imap", "encryption": "none",
                                                   "port": 1024 + (base + i) % 60000})
        assert st == 201, js
        made.append(js["id"])
    try:
        open_view(d, web, "users")
        open_view(d, web, "ports")
        assert len(d.find_elements(By.CSS_SELECTOR, "#view table.list tbody tr")) == 500
        # Select all and back: the selection follows in one pass too.
        d.find_element(By.CSS_SELECTOR, "#view thead input[type=checkbox]").click()
        wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#view tbody tr.selected")) == 500)
        d.find_element(By.CSS_SELECTOR, "#view thead input[type=checkbox]").click()
        wait(d, lambda d: not d.find_elements(By.CSS_SELECTOR, "#view tbody tr.selected"))
    finally:
        web.ok("POST", "/api/v1/ports/delete", {"ids": made})


UNLABELLED = """
    const named = (el) => (el.labels && el.labels.length && [...el.labels].some((l) => l.textContent.trim()))
      || (el.getAttribute('aria-label') || '').trim() || (el.getAttribute('aria-labelledby') || '').trim()
      || (el.tagName === 'BUTTON' && el.textContent.trim());
    return [...document.querySelectorAll('input, select, textarea, button')]
      .filter((el) => el.type !== 'hidden' && el.getClientRects().length && !named(el))
      .map((el) => el.outerHTML.slice(0, 120));"""


def test_every_control_has_a_label(web, driver):
    """Each view, and the forms its toolbar opens, has no control without an accessible name."""
    d = driver
    domain = "labels.example"
    web.api("POST", "/api/v1/domains", {"name": domain})
    try:
        for view, action in (("ip-addresses", "add"), ("ports", "new"), ("certificates", "add"), ("domains", "new"),
                             ("users", "add"), ("queue", None), ("listeners", None)):
            open_view(d, web, view)
            assert d.execute_script(UNLABELLED) == [], view
            if action:
                toolbar(d, action)
                dialog(d)
                assert d.execute_script(UNLABELLED) == [], f"{view}: {action} form"
                ActionChains(d).send_keys(Keys.ESCAPE).perform()
                wait_dialog_closed(d)
        open_view(d, web, "domains")
        ActionChains(d).double_click(wait_row(d, domain)).perform()
        dialog(d)
        assert d.execute_script(UNLABELLED) == [], "domain edit form"
        ActionChains(d).send_keys(Keys.ESCAPE).perform()
        wait_dialog_closed(d)
    finally:
        web.api("DELETE", f"/api/v1/domains/{domain}?force=true")


def test_works_by_keyboard(web, driver):
    """Tab to a nav link and Enter opens its view; a focused row opens its form on Enter;
    Escape closes the form and nothing is saved."""
    d = driver
    open_view(d, web, "ip-addresses")
    link = d.find_element(By.CSS_SELECTOR, 'nav.side a[href="#/ports"]')
    d.execute_script("arguments[0].focus()", link)
    ActionChains(d).send_keys(Keys.ENTER).perform()
    wait_view(d, "ports")
    create_port(web, name="Keyboard", port=free_port())
    try:
        open_view(d, web, "ports")
        r = wait_row(d, "Keyboard")
        d.execute_script("arguments[0].focus()", r)
        ActionChains(d).send_keys(Keys.ENTER).perform()
        dlg = dialog(d)
        name = dlg.find_element(By.CSS_SELECTOR, "input[type=text]")
        assert d.execute_script("return document.activeElement !== document.body")
        name.send_keys(" changed")
        ActionChains(d).send_keys(Keys.ESCAPE).perform()
        wait_dialog_closed(d)
        assert port_by_name(web, "Keyboard") is not None, "Escape saved nothing"
    finally:
        p = port_by_name(web, "Keyboard")
        if p:
            web.ok("DELETE", f"/api/v1/ports/{p['id']}")


def test_session_end_keeps_the_open_form(web, driver):
    """A session that ends under an open form: a log-in dialog on top, the form as it was,
    and Save works after logging in again."""
    d = driver
    if not logged_in(d, web):
        login(d, web)
    open_view(d, web, "ports")
    number = free_port()
    toolbar(d, "new")
    dlg = dialog(d)
    dlg.find_element(By.ID, "port-name").send_keys("Survivor")
    dlg.find_element(By.ID, "port-number").send_keys(str(number))
    end_session(d, web)
    submit(dlg)
    overlay = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog#relogin[open]")), msg="log-in-again dialog")
    assert "Your session has ended; log in again to continue" in overlay.text
    assert d.find_elements(By.CSS_SELECTOR, "nav.side"), "the app stays"
    assert not d.find_elements(By.ID, "password"), "not the full login page"
    assert dlg.is_displayed() and dlg.find_element(By.ID, "port-name").get_attribute("value") == "Survivor"
    assert port_by_name(web, "Survivor") is None
    # Escape does not close it; a wrong password shows under the field.
    pw = by_label(overlay, "Password")
    pw.send_keys(Keys.ESCAPE)
    assert overlay.is_displayed()
    pw.send_keys("not-the-password", Keys.ENTER)
    err = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog#relogin .field-error")))
    assert err.text and pw.get_attribute("aria-invalid") == "true"
    relogin_in_overlay(d, web.password)
    # The form is still there with what was typed; Save again creates the port.
    dlg = d.find_element(By.CSS_SELECTOR, "dialog[open]")
    assert dlg.find_element(By.ID, "port-name").get_attribute("value") == "Survivor"
    assert d.execute_script("return !!document.activeElement.closest('dialog[open]')"), "focus back in the form"
    submit(dlg)
    wait_dialog_closed(d)
    wait_row(d, "Survivor")
    port = port_by_name(web, "Survivor")
    assert port and port["port"] == number
    web.ok("DELETE", f"/api/v1/ports/{port['id']}")
    no_alert(d)


def test_polls_are_background_and_stop_while_logged_out(web, driver):
    """Timer-driven requests carry X-Berth-Background: 1 (they keep no session alive), the
    admin's own do not; while the session is lost nothing polls."""
    d = driver
    if not logged_in(d, web):
        login(d, web)
    open_view(d, web, "listeners")
    d.execute_script(RECORD_FETCH)
    wait(d, lambda d: sum(1 for r in requests_made(d) if r[0].startswith("/api/v1/listeners")) >= 2, timeout=5,
         msg="listeners polled")
    polled = [r for r in requests_made(d) if r[0].startswith("/api/v1/listeners")]
    assert all(r[1] == "1" for r in polled), polled
    # Opening a view is the admin's doing: its requests and the counts it refreshes are not background.
    d.execute_script(RECORD_FETCH)
    d.find_element(By.CSS_SELECTOR, 'nav.side a[href="#/queue"]').click()
    wait_view(d, "queue")
    user = requests_made(d)
    assert any(r[0].startswith("/api/v1/queue") for r in user) and any(r[0].startswith("/api/v1/summary") for r in user), user
    assert all(r[1] == "" for r in user), user
    # The session ends: the next poll opens the log-in dialog, then nothing is asked until the login.
    open_view(d, web, "listeners")
    end_session(d, web)
    wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog#relogin[open]")), msg="log-in-again dialog")
    time.sleep(0.3)  # requests already on their way
    d.execute_script(RECORD_FETCH)
    time.sleep(2.5)
    assert requests_made(d) == [], "no polls while logged out"
    relogin_in_overlay(d, web.password)
    wait(d, lambda d: any(r[0].startswith("/api/v1/listeners") and r[1] == "1" for r in requests_made(d)), timeout=5,
         msg="polls run again")
    assert any(r[0] == "/api/v1/session" and r[2] == "POST" for r in requests_made(d))


def test_forms_save_only_what_changed(web, driver):
    """An edit form sends the fields changed in it: a change made meanwhile elsewhere stays."""
    d = driver
    port = create_port(web, "Meanwhile", port=free_port())
    try:
        open_view(d, web, "ip-addresses")
        ActionChains(d).double_click(wait_row(d, IP3)).perform()
        dlg = dialog(d)
        set_ip(web, IP3, ports=[port["id"]])  # another admin assigns a port
        desc = by_label(dlg, "Description")
        desc.clear()
        desc.send_keys("changed in the form")
        submit(dlg)
        wait_dialog_closed(d)
        ip = web.ip(IP3)
        assert ip["description"] == "changed in the form"
        assert ip["ports"] == [port["id"]], "the assignment made meanwhile stays"

        # The port form the same way: its IPs are not sent unless ticked or cleared here.
        open_view(d, web, "ports")
        ActionChains(d).double_click(wait_row(d, "Meanwhile")).perform()
        dlg = dialog(d)
        set_ip(web, IP2, ports=web.ip(IP2)["ports"] + [port["id"]])
        web.ok("PUT", f"/api/v1/ports/{port['id']}", {"maxConnections": 500})
        d.execute_script(RECORD_FETCH)
        dlg.find_element(By.ID, "port-description").send_keys("edited")
        submit(dlg)
        wait_dialog_closed(d)
        saved = web.port(port["id"])
        assert saved["description"] == "edited"
        assert sorted(saved["assignedTo"]) == sorted([IP2, IP3]) and saved["maxConnections"] == 500, saved
        assert not [r for r in requests_made(d) if r[2] == "PUT" and "dryRun" not in r[0]][1:], "one PUT"
        # Nothing changed: Save just closes the dialog.
        ActionChains(d).double_click(wait_row(d, "Meanwhile")).perform()
        dlg = dialog(d)
        d.execute_script(RECORD_FETCH)
        submit(dlg)
        wait_dialog_closed(d)
        assert not [r for r in requests_made(d) if r[2] == "PUT"], requests_made(d)
    finally:
        set_ip(web, IP3, ports=[])
        web.ok("DELETE", f"/api/v1/ports/{port['id']}")


def test_require_tls_follows_the_default_until_touched(web, driver):
    d = driver
    port = create_port(web, "Starttls", "smtp", "tls", free_port())
    assert port["tlsRequired"] is False
    try:
        open_view(d, web, "ports")
        ActionChains(d).double_click(wait_row(d, "Starttls")).perform()
        dlg = dialog(d)
        box = dlg.find_element(By.ID, "port-tls-required")
        assert not box.is_selected()
        Select(dlg.find_element(By.ID, "port-protocol")).select_by_value("submission")
        assert box.is_selected(), "submission over TLS: required by default"
        submit(dlg)
        wait_dialog_closed(d)
        saved = web.port(port["id"])
        assert saved["protocol"] == "submission" and saved["tlsRequired"] is True, saved
        # Cleared by the admin: it stays cleared while the encryption changes back and forth.
        ActionChains(d).double_click(wait_row(d, "Starttls")).perform()
        dlg = dialog(d)
        box = dlg.find_element(By.ID, "port-tls-required")
        assert box.is_selected()
        box.click()
        Select(dlg.find_element(By.ID, "port-encryption")).select_by_value("none")
        Select(dlg.find_element(By.ID, "port-encryption")).select_by_value("tls")
        assert not box.is_selected()
        submit(dlg)
        wait_dialog_closed(d)
        assert web.port(port["id"])["tlsRequired"] is False
    finally:
        web.ok("DELETE", f"/api/v1/ports/{port['id']}")


def test_navigation_closes_dialogs_and_refreshes_counts(web, driver):
    d = driver
    open_view(d, web, "ports")
    toolbar(d, "new")
    dialog(d)
    d.execute_script("location.hash = '#/domains'")
    wait_view(d, "domains")
    assert not d.find_elements(By.CSS_SELECTOR, "dialog[open]"), "the New port form closed"
    toolbar(d, "new")
    dialog(d)
    d.back()  # Back to the ports
    wait_view(d, "ports")
    assert not d.find_elements(By.CSS_SELECTOR, "dialog[open]")
    # Opening a view refreshes the counts (not only every 15 s).
    count = lambda d: d.find_element(By.CSS_SELECTOR, 'a[data-view="ports"] .count').text
    wait(d, lambda d: count(d) == str(len(web.ports())))
    port = create_port(web, "Counted", port=free_port())
    try:
        d.execute_script("location.hash = '#/users'")
        wait_view(d, "users")
        wait(d, lambda d: count(d) == str(len(web.ports())), timeout=3, msg="count refreshed on opening a view")
    finally:
        web.ok("DELETE", f"/api/v1/ports/{port['id']}")


def test_delete_ip_names_its_ports(web, driver):
    d = driver
    addr = "127.0.0.5"
    add_ip(web, addr)
    number = free_port()
    port = create_port(web, "On Five", "smtp", "none", number, assigned=[addr])
    try:
        open_view(d, web, "ip-addresses")
        wait_row(d, addr).find_element(By.CSS_SELECTOR, "td.sel input[type=checkbox]").click()
        toolbar(d, "delete")
        dlg = dialog(d)
        assert "listeners on that address close" in dlg.find_element(By.CSS_SELECTOR, "p").text
        items = dlg.find_element(By.CSS_SELECTOR, ".confirm-list").text
        assert addr in items and f"On Five (SMTP {number})" in items, items
        dlg.find_element(By.CSS_SELECTOR, "button.danger").click()
        wait_dialog_closed(d)
        wait(d, lambda d: row(d, addr) is None, msg="row gone")
        assert web.port(port["id"])["assignedTo"] == []
    finally:
        web.ok("DELETE", f"/api/v1/ports/{port['id']}")
        web.api("DELETE", f"/api/v1/ip-addresses/{addr}")


def test_edit_user_and_delete_domain_with_users(web, driver):
    d = driver
    domain = "people.example"
    web.ok("POST", "/api/v1/domains", {"name": domain}, statuses=(201,))
    web.ok("POST", f"/api/v1/domains/{domain}/users", {"name": "dora", "password": ALICE_PW, "displayName": "Dora"},
           statuses=(201,))
    try:
        open_view(d, web, "users")
        wait_row(d, f"dora@{domain}").click()
        toolbar(d, "edit")
        dlg = dialog(d)
        name = by_label(dlg, "Display name")
        assert name.get_attribute("value") == "Dora"
        name.clear()
        name.send_keys("Dora Explorer")
        by_label(dlg, "Given name").send_keys("Dora")
        by_label(dlg, "Surname").send_keys("Márquez")
        by_label(dlg, "Aliases").send_keys("explorer, dora.m")
        by_label(dlg, "New password").send_keys("short")
        submit(dlg)
        err = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open] #user-new-password + .field-error")))
        assert "8" in err.text
        by_label(dlg, "New password").clear()  # empty keeps the password
        submit(dlg)
        wait_dialog_closed(d)
        wait(d, lambda d: "Dora Explorer" in wait_row(d, f"dora@{domain}").text)
        users = {u["address"]: u for u in web.ok("GET", "/api/v1/users")}
        assert users[f"dora@{domain}"]["displayName"] == "Dora Explorer"
        assert (users[f"dora@{domain}"]["givenName"], users[f"dora@{domain}"]["surname"]) == ("Dora", "Márquez")
        assert users[f"dora@{domain}"]["aliases"] == ["explorer", "dora.m"]
        wait(d, lambda d: "explorer, dora.m" in wait_row(d, f"dora@{domain}").text)

        # An alias another user already has is refused next to the Aliases field; nothing changes.
        web.ok("POST", f"/api/v1/domains/{domain}/users", {"name": "boots", "password": ALICE_PW}, statuses=(201,))
        open_view(d, web, "users")
        wait_row(d, f"boots@{domain}").click()
        toolbar(d, "edit")
        dlg = dialog(d)
        by_label(dlg, "Aliases").send_keys("explorer")
        submit(dlg)
        err = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "dialog[open] #user-edit-aliases + .field-error")))
        assert "explorer" in err.text
        by_label(dlg, "Aliases").send_keys(Keys.ESCAPE)  # Escape closes; nothing is saved
        wait_dialog_closed(d)
        users = {u["address"]: u for u in web.ok("GET", "/api/v1/users")}
        assert users[f"boots@{domain}"]["aliases"] == []
        web.ok("DELETE", f"/api/v1/domains/{domain}/users/boots")

        # Deleting the domain asks in the UI's words, not the API's force=true.
        open_view(d, web, "domains")
        wait_row(d, domain).click()
        toolbar(d, "delete")
        dialog(d).find_element(By.CSS_SELECTOR, "button.danger").click()
        dlg = wait(d, lambda d: next((x for x in d.find_elements(By.CSS_SELECTOR, "dialog[open]")
                                      if "its users" in x.text), None), msg="second confirmation")
        text = dlg.find_element(By.CSS_SELECTOR, "p").text
        assert text == f"{domain} has 1 user. Delete the domain and its users? Their mail stays on disk.", text
        assert "force" not in dlg.text
        dlg.find_element(By.CSS_SELECTOR, "button.danger").click()
        wait(d, lambda d: row(d, domain) is None, msg="domain gone")
    finally:
        web.api("DELETE", f"/api/v1/domains/{domain}?force=true")


def test_domain_dialog_footer_covers_nothing(web, driver):
    """At 1280x800 a control focused in the Edit domain dialog is not under the sticky footer."""
    d = driver
    domain = "footer.example"
    web.ok("POST", "/api/v1/domains", {"name": domain}, statuses=(201,))
    try:
        open_view(d, web, "domains")
        ActionChains(d).double_click(wait_row(d, domain)).perform()
        dlg = dialog(d)
        wait(d, lambda d: dlg.find_elements(By.CSS_SELECTOR, ".dkim textarea"), msg="DKIM records")
        rotate = dlg.find_element(By.XPATH, ".//button[normalize-space()='Rotate keys…']")
        # Tab through the dialog to the button, as a keyboard user does.
        for _ in range(60):
            if d.switch_to.active_element == rotate:
                break
            ActionChains(d).send_keys(Keys.TAB).perform()
        assert d.switch_to.active_element == rotate
        gap = d.execute_script("""
            const b = arguments[0].getBoundingClientRect(), f = arguments[1].getBoundingClientRect();
            return f.top - b.bottom;""", rotate, dlg.find_element(By.CSS_SELECTOR, ".dialog-actions"))
        assert gap >= 0, f"the footer covers the focused button by {-gap}px"
        ActionChains(d).send_keys(Keys.ESCAPE).perform()
        wait_dialog_closed(d)
    finally:
        web.api("DELETE", f"/api/v1/domains/{domain}?force=true")


def test_queue_retry_says_so(web, driver, tmp_path):
    d = driver
    domain = "sender.example"
    web.ok("POST", "/api/v1/domains", {"name": domain}, statuses=(201,))
    web.ok("POST", f"/api/v1/domains/{domain}/users", {"name": "sam", "password": ALICE_PW}, statuses=(201,))
    port = create_port(web, "Relay SSL", "smtp", "ssl", free_port(), assigned=[IP2])
    qid = None
    try:
        web.wait_listener(IP2, port["port"])
        with smtplib.SMTP_SSL(IP2, port["port"], context=tls_client_context(), timeout=10) as s:
            s.login(f"sam@{domain}", ALICE_PW)
            s.sendmail(f"sam@{domain}", ["someone@remote.example"], "Subject: hi\r\n\r\nhello\r\n")
        qid = web.ok("GET", "/api/v1/queue")[0]["id"]
        open_view(d, web, "queue")
        wait_row(d, qid).find_element(By.CSS_SELECTOR, "td.sel input[type=checkbox]").click()
        toolbar(d, "retry")
        info = wait(d, EC.visibility_of_element_located((By.CSS_SELECTOR, "#alerts .alert.info")), msg="retry status")
        assert f"Retry scheduled for {qid}" in info.text, info.text
    finally:
        if qid:
            web.api("DELETE", f"/api/v1/queue/{qid}")
        web.ok("DELETE", f"/api/v1/ports/{port['id']}")
        web.api("DELETE", f"/api/v1/domains/{domain}?force=true")


def test_logout(web, driver):
    d = driver
    if not logged_in(d, web):
        login(d, web)
    open_view(d, web, "ports")
    cookie = session_cookie(d)
    jar = {"Cookie": f"{cookie['name']}={cookie['value']}"}
    assert web.http("GET", "/api/v1/ports", None, jar)[0] == 200
    d.find_element(By.ID, "logout").click()
    wait(d, EC.visibility_of_element_located((By.ID, "password")), msg="back on the login page")
    assert not d.find_elements(By.CSS_SELECTOR, "nav.side")
    assert web.http("GET", "/api/v1/session", None, jar)[0] == 401
    assert web.http("GET", "/api/v1/ports", None, jar)[0] == 401
    # Reloading does not bring the settings back.
    d.refresh()
    wait(d, EC.visibility_of_element_located((By.ID, "password")))
    no_alert(d)


# ------------------------------------------------------------------ screenshots


def _shot(d, directory: Path, name: str, width: int = 1280, height: int = 800):
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    try:
        brand = d.find_elements(By.CSS_SELECTOR, "header .brand, .login h1")
        if brand and not d.find_elements(By.CSS_SELECTOR, "dialog[open]"):
            ActionChains(d).move_to_element(brand[0]).perform()  # no row under the mouse (hover)
        d.execute_script("return document.fonts ? document.fonts.ready.then(() => true) : true")
        d.save_screenshot(str(directory / f"{name}.png"))
    finally:
        d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _fill_realistic(b: Berth, certs: Path) -> None:
    """Ports, addresses, certificates, domains, users and a queued message as a small host has them."""
    add_ip(b, IP2, hostname="mx1.example.com", description="Public MX")
    add_ip(b, IP3, hostname="mail.example.org", description="Customer domains")
    certs.mkdir(parents=True, exist_ok=True)
    good, good_key = make_cert(certs, "mail.example.com", days=365)
    soon, soon_key = make_cert(certs, "legacy.example.net", days=12)
    b.ok("POST", "/api/v1/certificates", {"certificatePath": str(good), "privateKeyPath": str(good_key)})
    b.ok("POST", "/api/v1/certificates", {"certificatePath": str(soon), "privateKeyPath": str(soon_key)})
    cert = {"certificatePath": str(good), "privateKeyPath": str(good_key)}
    standard = os.geteuid() == 0
    numbers = {}
    for name, std in (("smtp", 25), ("smtps", 465), ("submission", 587), ("imap", 143), ("imaps", 993), ("ldap", 389)):
        numbers[name] = std if standard and _port_is_free(std, (IP2, IP3)) else free_port()
    both = [IP2, IP3]
    create_port(b, "SMTP", "smtp", "tls", numbers["smtp"], assigned=both, description="Inbound mail (MX)")
    create_port(b, "SMTP SSL", "smtp", "ssl", numbers["smtps"], assigned=both, **cert)
    create_port(b, "Submission", "submission", "tls", numbers["submission"], assigned=both,
                description="Mail clients", maxConnectionsPerClient=20, **cert)
    create_port(b, "IMAP", "imap", "tls", numbers["imap"], assigned=[IP2], **cert)
    create_port(b, "IMAP SSL", "imap", "ssl", numbers["imaps"], assigned=[IP2], **cert)
    create_port(b, "LDAP", "ldap", "tls", numbers["ldap"], description="Address book (not enabled yet)")
    b.ok("POST", "/api/v1/domains", {"name": "example.com", "ipAddress": IP2,
                                     "outbound": {"ipv4": {"mode": "domain"}}}, statuses=(201,))
    b.ok("POST", "/api/v1/domains", {"name": "example.org", "ipAddress": IP3,
                                     "outbound": {"ipv4": {"mode": "rotate", "addresses": [IP3, IP2]}}}, statuses=(201,))
    for domain, user, display in (("example.com", "alice", "Alice Liddell"), ("example.com", "bob", "Bob Dobbs"),
                                  ("example.com", "postmaster", "Postmaster"), ("example.org", "carol", "Carol Danvers")):
        b.ok("POST", f"/api/v1/domains/{domain}/users", {"name": user, "password": ALICE_PW, "displayName": display},
             statuses=(201,))
    # One message to a remote domain: no DNS answers in tests, so it waits in the queue.
    try:
        with smtplib.SMTP(IP2, numbers["submission"], timeout=10) as s:
            s.ehlo("laptop.example.com")
            s.starttls(context=tls_client_context())
            s.ehlo("laptop.example.com")
            s.login("alice@example.com", ALICE_PW)
            s.sendmail("alice@example.com", ["friend@remote.example", "team@partner.example"],
                       "From: alice@example.com\r\nTo: friend@remote.example\r\nSubject: Hello\r\n\r\nHi!\r\n")
    except (OSError, smtplib.SMTPException):
        pass  # the queue view then shows an empty queue


def test_screenshots(driver, make_server, tmp_path):
    target = os.environ.get("BERTH_SCREENSHOTS")
    if not target:
        pytest.skip("set BERTH_SCREENSHOTS=<dir> to save screenshots of every view")
    out = Path(target)
    out.mkdir(parents=True, exist_ok=True)
    b = make_server()
    _fill_realistic(b, tmp_path / "certs")
    d = driver
    d.get(f"{b.admin_url}/#/ip-addresses")
    wait(d, EC.visibility_of_element_located((By.ID, "password")))
    _shot(d, out, "login")
    login(d, b, "ip-addresses")
    wait(d, lambda d: d.find_element(By.CSS_SELECTOR, 'a[data-view="ports"] .count').text == "6")
    for view in ("ip-addresses", "ports", "certificates", "domains", "users", "queue", "listeners"):
        open_view(d, b, view)
        if view == "listeners":
            wait(d, lambda d: "listening" in d.find_element(By.ID, "view").text)
        _shot(d, out, view)
        if view == "ports":
            ActionChains(d).double_click(wait_row(d, "Submission")).perform()
            dialog(d)
            _shot(d, out, "port-form")
            d.find_element(By.ID, "port-name").send_keys(Keys.ESCAPE)
            wait_dialog_closed(d)
            _shot(d, out, "ports-phone", 390, 844)
            d.execute_cdp_cmd("Emulation.setEmulatedMedia",
                              {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
            try:
                _shot(d, out, "ports-dark")
            finally:
                d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        if view == "domains":
            ActionChains(d).double_click(wait_row(d, "example.org")).perform()
            dlg = dialog(d)
            wait(d, lambda d: dlg.find_elements(By.CSS_SELECTOR, ".dkim textarea"))
            _shot(d, out, "domain-form")
            dlg.find_element(By.ID, "domain-ip").send_keys(Keys.ESCAPE)
            wait_dialog_closed(d)
    for png in out.glob("*.png"):
        assert png.stat().st_size < 200_000, f"{png} is {png.stat().st_size} bytes"
