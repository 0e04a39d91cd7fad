package e2e

import (
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// An operator makes a queue in the console, is told which field of the
// rules is wrong, fixes them, and sees two players' match among the
// queue's recent matches.
func TestBrowserOperatorRunsAQueue(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	s := startDevArgs(t, bins.tandem, dataDir)
	runWithStdin(t, "operator password 1\n", bins.tandem, "admin", "create",
		"--db", "sqlite:"+filepath.Join(dataDir, "tandem.db"), "--audit-key", filepath.Join(dataDir, "audit-key.pem"),
		"--admin-name", "op", "--role", "operator", "--password-stdin")

	browser := newBrowser(t)
	op := newBrowserContext(t, browser)
	login(t, op, s.web, "op", "operator password 1")
	do(t, op, "make a queue",
		chromedp.WaitVisible(css(`nav a[href="/admin/matchmaking"]`)),
		chromedp.Click(css(`nav a[href="/admin/matchmaking"]`)),
		chromedp.WaitVisible(css(`form[action="/admin/matchmaking"] input[name="name"]`)),
		chromedp.SendKeys(css(`form[action="/admin/matchmaking"] input[name="name"]`), "duel"),
		chromedp.SendKeys(css(`form[action="/admin/matchmaking"] input[name="room_type"]`), "relay"),
		chromedp.SendKeys(css(`form[action="/admin/matchmaking"] input[name="teams"]`), "2"),
		chromedp.SendKeys(css(`form[action="/admin/matchmaking"] input[name="team_size"]`), "1"),
		chromedp.Click(css(`form[action="/admin/matchmaking"] button[type="submit"]`)),
		// The new queue's page, with its editor.
		chromedp.WaitVisible(css(`form[action="/admin/matchmaking/duel"] textarea[name="config"]`)),
	)
	do(t, op, "save rules with a mistake and see the field named",
		chromedp.SetValue(css(`textarea[name="config"]`),
			`{"room_type":"relay","teams":2,"team_size":1,"rules":[{"property":"skill","kind":"range","base":-5}]}`),
		chromedp.Click(css(`form[action="/admin/matchmaking/duel"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//*[contains(@class, "field-error")]//code[contains(., "rules[0].base")]`)),
	)
	do(t, op, "save good rules",
		chromedp.SetValue(css(`textarea[name="config"]`),
			`{"room_type":"relay","teams":2,"team_size":1,"rules":[{"property":"skill","kind":"range","base":100,"step":50,"every_ms":1000,"max":1000}]}`),
		chromedp.Click(css(`form[action="/admin/matchmaking/duel"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//textarea[@name="config"][contains(., '"every_ms": 1000')]`)),
	)

	// Two players find a match; the page, polling, lists it.
	p1, _ := guest(t, s.web, "browser-mm-1", s.url)
	p2, _ := guest(t, s.web, "browser-mm-2", s.url)
	m1, m2 := startMatchmake(t, p1, "duel"), startMatchmake(t, p2, "duel")
	room := m1.wait(t)
	m2.wait(t)
	do(t, op, "see the match among the recent matches",
		chromedp.WaitVisible(css(`#queue-live a[href="/admin/rooms/`+room.ID()+`"]`)),
	)
}
