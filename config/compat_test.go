package config_test

import (
	"slices"
	"testing"

	"github.com/valkey-io/valkey-go"

	"github.com/vactor-io/vactor/config"
)

// TestParseURLAgreesWithValkeyGo checks that the URLs valkey-go's ParseURL
// reads mean the same here: addresses, sentinel master set, credentials,
// database, TLS.
func TestParseURLAgreesWithValkeyGo(t *testing.T) {
	for _, u := range []string{
		"valkey://h:7000",
		"redis://u:secret@h:7000/3",
		"valkeys://h:7000?skip_verify=true",
		"rediss://h?db=4&max_retries=0",
		"valkey://a:7000?addr=b:7001&addr=c:7002",
		"valkey://app:secret@s1:26379?addr=s2:26380&addr=s3:26381&master_set=mymaster",
		"valkeys://s1:26379/2?addr=s2:26380&master_set=mymaster",
	} {
		t.Run(u, func(t *testing.T) {
			want, err := valkey.ParseURL(u)
			if err != nil {
				t.Fatal(err)
			}
			got, err := config.ParseURL(u)
			if err != nil {
				t.Fatal(err)
			}
			addrs := got.Addrs
			if got.SentinelMode {
				addrs = got.SentinelAddrs
			}
			if !slices.Equal(addrs, want.InitAddress) {
				t.Errorf("addresses %q, valkey-go %q", addrs, want.InitAddress)
			}
			if got.SentinelMasterName != want.Sentinel.MasterSet || got.SentinelMode != (want.Sentinel.MasterSet != "") {
				t.Errorf("master set %q (mode %t), valkey-go %q", got.SentinelMasterName, got.SentinelMode, want.Sentinel.MasterSet)
			}
			if got.Username != want.Username || got.Password != want.Password {
				t.Errorf("credentials %q, valkey-go %q", got.Username, want.Username)
			}
			if got.DB != want.SelectDB {
				t.Errorf("DB %d, valkey-go %d", got.DB, want.SelectDB)
			}
			if got.TLS.Enabled != (want.TLSConfig != nil) {
				t.Errorf("TLS %t, valkey-go %v", got.TLS.Enabled, want.TLSConfig != nil)
			}
			if want.TLSConfig != nil && got.TLS.InsecureSkipVerify != want.TLSConfig.InsecureSkipVerify {
				t.Errorf("InsecureSkipVerify %t, valkey-go %t", got.TLS.InsecureSkipVerify, want.TLSConfig.InsecureSkipVerify)
			}
			if want.DisableRetry != (got.MaxRetries == 0) {
				t.Errorf("MaxRetries %d, valkey-go DisableRetry %t", got.MaxRetries, want.DisableRetry)
			}
		})
	}
}
