package readerr

import "testing"

// TestEveryReasonHasASentence: every reason a source can count has words for the page.
func TestEveryReasonHasASentence(t *testing.T) {
	for _, r := range Of(EngineReads, FileReads, ArchiveReads, APIReads, UIReads, []string{InvalidDate}) {
		if _, ok := sentences[r]; !ok {
			t.Errorf("no sentence for %s", r)
		}
	}
}
