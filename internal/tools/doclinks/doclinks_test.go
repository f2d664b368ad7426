// Package doclinks_test checks the repository's markdown: every relative
// link in README.md, docs/*.md and cmd/vactor/README.md points to a file
// or directory that exists and, when it has a #fragment into a markdown
// file, to a heading of that file (GitHub's anchor rules).
package doclinks_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository's root, from this package's directory.
const root = "../../.."

// pages returns the markdown files whose links are checked.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md found: is root right?")
	}
	return append([]string{
		filepath.Join(root, "README.md"),
		filepath.Join(root, "cmd", "vactor", "README.md"),
	}, docs...)
}

func TestRelativeLinks(t *testing.T) {
	anchors := map[string][]string{} // markdown file -> its heading anchors
	anchorsOf := func(path string) []string {
		if a, ok := anchors[path]; ok {
			return a
		}
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		a := headingAnchors(string(text))
		anchors[path] = a
		return a
	}
	checked := 0
	for _, page := range pages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, page)
		for _, l := range links(string(text)) {
			if isExternal(l.target) {
				continue
			}
			checked++
			path, frag, _ := strings.Cut(l.target, "#")
			target := page
			if path != "" {
				target = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
				if _, err := os.Stat(target); err != nil {
					t.Errorf("%s:%d: link %q: %s does not exist", name, l.line, l.target, path)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			if !slices.Contains(anchorsOf(target), frag) {
				t.Errorf("%s:%d: link %q: no heading with anchor #%s in %s", name, l.line, l.target, frag, filepath.Base(target))
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no relative link to check")
	}
}

// TestAnchor pins the anchor rules the link check relies on.
func TestAnchor(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Cluster mode", "cluster-mode"},
		{"Standalone (`make bench`)", "standalone-make-bench"},
		{"TLS, mutual TLS and ACL", "tls-mutual-tls-and-acl"},
		{"Design measurements: the connection actor", "design-measurements-the-connection-actor"},
		{"Optimistic locking: Watch and WatchRetry", "optimistic-locking-watch-and-watchretry"},
		{"Pub/sub: supervised subscribers", "pubsub-supervised-subscribers"},
		{"vactor ping, vactor info", "vactor-ping-vactor-info"},
		{"max_retries", "max_retries"},
	} {
		if got := anchor(c.heading); got != c.want {
			t.Errorf("anchor(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
	got := headingAnchors("# A\n\n```\n# not a heading\n```\n\n## A\n### A\n")
	if want := []string{"a", "a-1", "a-2"}; !slices.Equal(got, want) {
		t.Errorf("headingAnchors: got %q, want %q", got, want)
	}
	ls := links("see [a](x.md#b) and `[c](not-a-link)`\n```\n[d](in-a-fence)\n```\n[e]: ref.md\n")
	var targets []string
	for _, l := range ls {
		targets = append(targets, l.target)
	}
	if want := []string{"x.md#b", "ref.md"}; !slices.Equal(targets, want) {
		t.Errorf("links: got %q, want %q", targets, want)
	}
}

type link struct {
	target string
	line   int
}

var (
	inlineLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s+(\S+)`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
)

// links returns the link targets of a markdown text, outside fenced code
// blocks and code spans.
func links(text string) []link {
	var out []link
	fenced := false
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if m := refLink.FindStringSubmatch(l); m != nil {
			out = append(out, link{target: m[1], line: i + 1})
			continue
		}
		l = codeSpan.ReplaceAllString(l, "")
		for _, m := range inlineLink.FindAllStringSubmatch(l, -1) {
			out = append(out, link{target: m[1], line: i + 1})
		}
	}
	return out
}

// isExternal reports whether target has a scheme (https:, mailto:, ...).
func isExternal(target string) bool {
	i := strings.Index(target, ":")
	if i <= 0 {
		return false
	}
	return !strings.ContainsAny(target[:i], "/#.")
}

// headingAnchors returns the anchors GitHub gives the headings of a
// markdown text, in order; a repeated anchor gets -1, -2, ...
func headingAnchors(text string) []string {
	var out []string
	seen := map[string]int{}
	fenced := false
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		m := heading.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a := anchor(m[2])
		if n := seen[a]; n > 0 {
			seen[a] = n + 1
			a += "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		out = append(out, a)
	}
	return out
}

// anchor is GitHub's anchor of a heading: lower case, punctuation removed
// (letters, digits, spaces, '-' and '_' kept), spaces turned into '-'.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
