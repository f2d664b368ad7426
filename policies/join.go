package policies

import "strings"

// JoinLine is errors.Join on one line: the errors' texts separated by
// "; " instead of newlines, so that an error made of several (one per
// seed node or sentinel asked) stays one line in a line-based log. It
// returns nil when every err is nil; errors.Is and errors.As see each
// one.
func JoinLine(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	return &lineErrors{errs: kept}
}

type lineErrors struct{ errs []error }

func (e *lineErrors) Error() string {
	var b strings.Builder
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return b.String()
}

func (e *lineErrors) Unwrap() []error { return e.errs }
