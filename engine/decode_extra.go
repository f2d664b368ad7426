package engine

import (
	"github.com/valkey-io/valkey-go"
)

// decodeZs reads a ZRANGE ... WITHSCORES reply: a flat member/score array
// (RESP2) or an array of [member, score] pairs (RESP3).
func decodeZs(res valkey.ValkeyResult) ([]Z, error) {
	zs, err := res.AsZScores()
	if err != nil {
		return nil, typed(&res, err)
	}
	out := make([]Z, len(zs))
	for i, z := range zs {
		out[i] = Z(z)
	}
	return out, nil
}

// decodeScanPage reads a SCAN reply: the next cursor and this page's keys.
func decodeScanPage(res valkey.ValkeyResult) (ScanPage, error) {
	se, err := res.AsScanEntry()
	if err != nil {
		return ScanPage{}, typed(&res, err)
	}
	return ScanPage{Cursor: se.Cursor, Keys: se.Elements}, nil
}
