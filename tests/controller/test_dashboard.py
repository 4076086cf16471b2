"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, through a real
``kubectl proxy`` to the real extension and the real controller, with real Git. Each page is
saved as a screenshot under .local/screenshots/."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.apps import Apps
from tests.support.browser import CHROMIUM_ARGS, chromium, kubectl_proxy
from tests.support.cluster import LOCAL_DIR, REPO_ROOT, Cluster
from tests.support.gitserver import GitServer
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster

UI = "/apis/gitops.driftguard.io/v1alpha1/ui/"
SHOTS = LOCAL_DIR / "screenshots"
LIVE = 60_000  # ms: a sync through the controller, as the page shows it live
Proxy = Callable[..., str]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (its own cookies); the test fails on any uncaught script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"the dashboard's scripts failed: {errors}"


@pytest.fixture
def proxy(driftguard: Cluster) -> Iterator[Proxy]:
    """``proxy(*flags)``: a ``kubectl proxy`` (as the admin, or ``--as=USER``), its base URL."""
    stack: list[Iterator[str]] = []

    def start(*flags: str) -> str:
        manager = kubectl_proxy(driftguard.bin_dir / "kubectl", driftguard.kubeconfig, *flags)
        stack.append(manager)  # type: ignore[arg-type]
        return manager.__enter__()

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)  # type: ignore[attr-defined]


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"dashboard-{name}.png"), full_page=True)


def demo_files() -> dict[str, str]:
    """The demo's own repository (hack/demo/shop): what hack/demo.sh deploys."""
    return {p.name: p.read_text() for p in sorted((REPO_ROOT / "hack" / "demo" / "shop").glob("*.yaml"))}


def config_map(greeting: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\ndata:\n  GREETING: {greeting}\n"


def summary_value(page: Page, label: str) -> str:
    return page.locator(f"#app-summary dt:text-is('{label}') + dd").inner_text()


def test_the_list_shows_the_demo_application_and_its_page_by_keyboard(
    page: Page, proxy: Proxy, apps: Apps, git_server: GitServer, repo: str, namespace: str
) -> None:
    sha = git_server.commit(repo, demo_files())
    apps.create("shop", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {"selfHeal": True}})
    apps.wait_synced("shop", sha)
    page.goto(proxy() + UI)
    row = page.locator(f"tr[data-app='{namespace}/shop']")
    expect(row).to_contain_text("Synced", timeout=LIVE)
    expect(row).to_contain_text(sha[:7])
    expect(row).to_contain_text(git_server.git_url(repo))
    expect(row).to_contain_text("enforce")  # the guard mode
    # One cell per column, under its heading.
    headings = page.locator("main table > thead > tr > th")
    assert (
        headings.count()
        == page.locator(f"main table > tbody > tr[data-app='{namespace}/shop'] > *").count()
        == 9
    )
    sync_heading = headings.nth(3).bounding_box()
    sync_cell = row.locator("td.cell-sync").bounding_box()
    assert sync_heading and sync_cell and abs(sync_heading["x"] - sync_cell["x"]) < 1
    expect(page.locator("#alerts")).to_be_empty()
    shot(page, "applications")

    # Search and filters narrow the list.
    page.get_by_label("Search").fill("no-such-application")
    expect(page.get_by_text("No Application matches.")).to_be_visible()
    page.get_by_label("Search").fill(namespace)
    expect(row).to_be_visible()
    page.get_by_label("Sync").select_option("OutOfSync")
    expect(row).to_be_hidden()
    page.get_by_label("Sync").select_option("")

    # By keyboard alone: Tab to the Application's link, Enter.
    link = row.get_by_role("link", name="shop")
    for _ in range(40):
        page.keyboard.press("Tab")
        if link.evaluate("el => el === document.activeElement"):
            break
    else:
        pytest.fail("the Application's link is not reachable with Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="shop")).to_be_visible()
    tree = page.locator("section[aria-labelledby='h-resources']")
    expect(tree.get_by_role("heading", name="Deployment (1)")).to_be_visible()
    expect(tree).to_contain_text("frontend")
    # The fields Git sets, read from the live object with the user's own rights.
    deployment = tree.locator("li.object", has_text="frontend").filter(has=page.locator("summary")).first
    tree.locator("h3:text-is('Deployment (1)') + ul li.object summary").click()
    expect(tree.locator("h3:text-is('Deployment (1)') + ul ul.paths")).to_contain_text(".spec.replicas")
    assert deployment.is_visible()
    expect(page.locator("section[aria-labelledby='h-project']")).to_contain_text("sourceNamespaces")
    shot(page, "application")

    # Readable at a phone's width: nothing wider than the screen but the tables' own scroll.
    page.set_viewport_size({"width": 375, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "application-phone")


def test_a_sync_from_the_button_reaches_synced_and_both_pages_update_live(
    browser: Browser, page: Page, proxy: Proxy, kubectl: Callable[..., object], apps: Apps,
    git_server: GitServer, repo: str, namespace: str,
) -> None:  # fmt: skip
    sha = git_server.commit(repo, {"cm.yaml": config_map("hello")})
    apps.create("shop", {"repoURL": git_server.git_url(repo)})  # auto-sync off: OutOfSync until asked
    wait_for(lambda: (apps.get("shop").get("status") or {}).get("sync", {}).get("status") == "OutOfSync",
             "the Application to be compared and OutOfSync")  # fmt: skip
    base = proxy()
    listing = page.context.new_page()
    listing.goto(base + UI)
    row = listing.locator(f"tr[data-app='{namespace}/shop']")
    expect(row.locator("td.cell-sync")).to_have_text(re.compile("OutOfSync"), timeout=LIVE)

    page.goto(f"{base}{UI}#/apps/{namespace}/shop")
    expect(page.locator("#sync")).to_be_enabled()
    assert "OutOfSync" in summary_value(page, "Sync")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    page.get_by_label("Prune objects no longer in Git").check()
    page.locator("#sync").click()
    expect(page.locator("#app-summary")).to_contain_text("✔ Synced", timeout=LIVE)
    expect(page.locator("section[aria-labelledby='h-operation']")).to_contain_text("Succeeded", timeout=LIVE)
    expect(page.locator("section[aria-labelledby='h-operation']")).to_contain_text("created")
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded instead of updating live"
    assert sha[:7] in summary_value(page, "Sync")
    expect(row.locator("td.cell-sync")).to_have_text(re.compile("Synced"), timeout=LIVE)  # the list too
    expect(page.locator("#alerts")).to_be_empty()
    expect(listing.locator("#alerts")).to_be_empty()
    shot(page, "application-synced")
    shot(listing, "applications-live")
    operation = apps.get("shop")["status"]["operationState"]["operation"]
    assert operation["sync"] == {"prune": True} and operation["initiatedBy"]["username"] == "kubernetes-admin"

    # The diff of what a sync would change, from the same server side as the CLI's.
    git_server.commit(repo, {"cm.yaml": config_map("bonjour")})
    page.locator("#diff").click()
    diff = page.locator("section[aria-labelledby='h-diff'] pre")
    expect(diff.locator("span.del")).to_have_text(["-  GREETING: hello\n"], timeout=LIVE)
    expect(diff.locator("span.add")).to_have_text(["+  GREETING: bonjour\n"])
    shot(page, "application-diff")


def test_a_viewer_sees_sync_disabled_with_the_reason_and_a_forbidden_answer(
    page: Page, proxy: Proxy, kubectl: Callable[..., object], apps: Apps, git_server: GitServer,
    repo: str, namespace: str,
) -> None:  # fmt: skip
    git_server.commit(repo, {"cm.yaml": config_map("hello")})
    apps.create("shop", {"repoURL": git_server.git_url(repo)})
    kubectl("create", "rolebinding", "viewer", "-n", namespace, "--clusterrole=view", "--user=viewer")
    page.goto(f"{proxy('--as=viewer')}{UI}#/apps/{namespace}/shop")
    expect(page.locator("#who")).to_contain_text("viewer")
    expect(page.locator("#sync")).to_be_disabled()
    expect(page.locator("#sync-reason")).to_contain_text("applications/sync")
    expect(page.locator("#diff")).to_be_enabled()  # the view role may compare
    shot(page, "application-viewer")

    # Forced on by hand, the action is refused by the API, and the page says so.
    page.evaluate("document.querySelector('#sync').disabled = false")
    page.locator("#sync").click()
    expect(page.locator("#alerts")).to_contain_text("Error from server (Forbidden)")
    expect(page.locator("#alerts")).to_contain_text("applications/sync")
    assert "operation" not in apps.get("shop") or not apps.get("shop").get("operation")


def test_who_may_list_nothing_sees_nothing(
    page: Page, proxy: Proxy, apps: Apps, repo: str, namespace: str
) -> None:
    apps.create("shop", {"repoURL": "git://127.0.0.1:1/none.git"})
    page.goto(proxy("--as=nobody") + UI)
    expect(page.locator("main")).to_contain_text(
        "No Applications in the namespaces you may list.", timeout=LIVE
    )
    assert page.locator(f"tr[data-app='{namespace}/shop']").count() == 0
    page.goto(f"{page.url}#/apps/{namespace}/shop")
    expect(page.locator("#alerts")).to_contain_text("Error from server (Forbidden)")


def test_a_rollback_from_the_history(
    page: Page, proxy: Proxy, kubectl: Callable[..., object], apps: Apps, git_server: GitServer,
    repo: str, namespace: str,
) -> None:  # fmt: skip
    first = git_server.commit(repo, {"cm.yaml": config_map("hello")})
    apps.create("shop", {"repoURL": git_server.git_url(repo)}, syncPolicy={"automated": {}})
    apps.wait_synced("shop", first)
    second = git_server.commit(repo, {"cm.yaml": config_map("bonjour")})
    apps.operate("shop", "sync", {})  # deploy it now, rather than at the next poll
    apps.wait_synced("shop", second, timeout=120)
    page.goto(f"{proxy()}{UI}#/apps/{namespace}/shop")
    history = page.locator("section[aria-labelledby='h-history']")
    expect(history.locator("tbody tr")).to_have_count(2)
    history.get_by_role("button", name="Roll back to 0").click()
    history.get_by_role("button", name="Confirm rollback to 0").click()
    expect(history.locator("tbody tr")).to_have_count(3, timeout=LIVE)
    expect(page.locator("section[aria-labelledby='h-conditions']")).to_contain_text(
        "RolledBack", timeout=LIVE
    )
    expect(history.locator("tbody tr").first).to_contain_text(first[:7])  # deployed now
    assert second[:7] in summary_value(page, "Sync")  # Git's newest, no longer deployed: OutOfSync
    assert "OutOfSync" in summary_value(page, "Sync")
    greeting = kubectl("get", "configmap", "greeting", "-n", namespace, "-o", "jsonpath={.data.GREETING}")
    assert greeting.stdout == "hello"  # type: ignore[attr-defined]
    shot(page, "application-rolled-back")


def test_values_from_git_and_the_cluster_are_shown_as_text_never_as_markup(
    page: Page, proxy: Proxy, kubectl: Callable[..., object], apps: Apps, git_server: GitServer, repo: str,
    namespace: str,
) -> None:  # fmt: skip
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    git_server.commit(repo, {"cm.yaml": config_map(json.dumps(hostile))})
    app = apps.create("shop", {"repoURL": git_server.git_url(repo)})
    event = {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "shop.hostile", "namespace": namespace},
        "involvedObject": {
            "apiVersion": "gitops.driftguard.io/v1alpha1", "kind": "Application", "name": "shop",
            "namespace": namespace, "uid": app["metadata"]["uid"],
        },
        "type": "Warning", "reason": "Hostile", "message": hostile, "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
    }  # fmt: skip
    kubectl("create", "-f", "-", input=json.dumps(event))
    page.goto(f"{proxy()}{UI}#/apps/{namespace}/shop")
    expect(page.locator("section[aria-labelledby='h-events']")).to_contain_text(hostile)  # an Event
    page.locator("#diff").click()
    expect(page.locator("section[aria-labelledby='h-diff'] pre")).to_contain_text(
        hostile, timeout=LIVE
    )  # Git
    assert page.evaluate("window.__pwned") is None
    # No element was made from the values: a CSP would block an inline handler anyway, so the
    # absence of the elements is what shows they were text.
    assert page.locator("main img, main script").count() == 0


def test_a_write_a_page_of_another_origin_sends_through_kubectl_proxy_is_refused(
    proxy: Proxy, apps: Apps, namespace: str
) -> None:
    apps.create("shop", {"repoURL": "git://127.0.0.1:1/none.git"})
    # What a form on another site posts to http://127.0.0.1:8001/... when the browser sends it.
    forged = {"Origin": "http://evil.example", "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}
    request = urllib.request.Request(  # noqa: S310 (loopback)
        f"{proxy()}/apis/gitops.driftguard.io/v1alpha1/namespaces/{namespace}/applications/shop/sync",
        data=b"{}", method="POST", headers=forged,
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310 (loopback)
    assert refused.value.code == 403
    assert "X-CSRF-Token" in json.loads(refused.value.read())["message"]
    assert not apps.get("shop").get("operation")
