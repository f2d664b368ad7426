package glide

// Which replies the driver knows the shape of. glide 2.5.3's Go binding
// takes every map key and every set member for a string (see convert.go:
// it returns map[string]any and map[string]struct{}), and panics on any
// other; its core aborts the process on a RESP3 big number or attribute.
// The servers' own commands (Valkey's, Redis's) reply with neither, but
// for those the driver handles itself (COMMAND, COMMAND DOCS, LATENCY
// HISTOGRAM: see glide.go) and DEBUG PROTOCOL (see debugRisk); their
// shapes are checked against the valkey-go driver (TestReplyShapes). A
// command of another name (a module's, or a server command newer than
// this table) may reply with anything: it goes in a batch of its own
// (alone), as do scripts the driver cannot judge and functions.

// coreCommands holds the names of the servers' own commands, upper case:
// those of Redis 7.0 (its COMMAND LIST) and the ones added since by
// Redis 7.2 - 8.4 and Valkey 7.2 - 9.0.
var coreCommands = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		// Redis 7.0.
		"ACL", "APPEND", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "BITCOUNT", "BITFIELD", "BITFIELD_RO",
		"BITOP", "BITPOS", "BLMOVE", "BLMPOP", "BLPOP", "BRPOP", "BRPOPLPUSH", "BZMPOP", "BZPOPMAX",
		"BZPOPMIN", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "COPY", "DBSIZE", "DEBUG", "DECR", "DECRBY",
		"DEL", "DISCARD", "DUMP", "ECHO", "EVAL", "EVALSHA", "EVALSHA_RO", "EVAL_RO", "EXEC", "EXISTS",
		"EXPIRE", "EXPIREAT", "EXPIRETIME", "FAILOVER", "FCALL", "FCALL_RO", "FLUSHALL", "FLUSHDB",
		"FUNCTION", "GEOADD", "GEODIST", "GEOHASH", "GEOPOS", "GEORADIUS", "GEORADIUSBYMEMBER",
		"GEORADIUSBYMEMBER_RO", "GEORADIUS_RO", "GEOSEARCH", "GEOSEARCHSTORE", "GET", "GETBIT", "GETDEL",
		"GETEX", "GETRANGE", "GETSET", "HDEL", "HELLO", "HEXISTS", "HGET", "HGETALL", "HINCRBY",
		"HINCRBYFLOAT", "HKEYS", "HLEN", "HMGET", "HMSET", "HRANDFIELD", "HSCAN", "HSET", "HSETNX",
		"HSTRLEN", "HVALS", "INCR", "INCRBY", "INCRBYFLOAT", "INFO", "KEYS", "LASTSAVE", "LATENCY", "LCS",
		"LINDEX", "LINSERT", "LLEN", "LMOVE", "LMPOP", "LOLWUT", "LPOP", "LPOS", "LPUSH", "LPUSHX",
		"LRANGE", "LREM", "LSET", "LTRIM", "MEMORY", "MGET", "MIGRATE", "MODULE", "MONITOR", "MOVE", "MSET",
		"MSETNX", "MULTI", "OBJECT", "PERSIST", "PEXPIRE", "PEXPIREAT", "PEXPIRETIME", "PFADD", "PFCOUNT",
		"PFDEBUG", "PFMERGE", "PFSELFTEST", "PING", "PSETEX", "PSUBSCRIBE", "PSYNC", "PTTL", "PUBLISH",
		"PUBSUB", "PUNSUBSCRIBE", "QUIT", "RANDOMKEY", "READONLY", "READWRITE", "RENAME", "RENAMENX",
		"REPLCONF", "REPLICAOF", "RESET", "RESTORE", "RESTORE-ASKING", "ROLE", "RPOP", "RPOPLPUSH", "RPUSH",
		"RPUSHX", "SADD", "SAVE", "SCAN", "SCARD", "SCRIPT", "SDIFF", "SDIFFSTORE", "SELECT", "SET",
		"SETBIT", "SETEX", "SETNX", "SETRANGE", "SHUTDOWN", "SINTER", "SINTERCARD", "SINTERSTORE",
		"SISMEMBER", "SLAVEOF", "SLOWLOG", "SMEMBERS", "SMISMEMBER", "SMOVE", "SORT", "SORT_RO", "SPOP",
		"SPUBLISH", "SRANDMEMBER", "SREM", "SSCAN", "SSUBSCRIBE", "STRLEN", "SUBSCRIBE", "SUBSTR", "SUNION",
		"SUNIONSTORE", "SUNSUBSCRIBE", "SWAPDB", "SYNC", "TIME", "TOUCH", "TTL", "TYPE", "UNLINK",
		"UNSUBSCRIBE", "UNWATCH", "WAIT", "WATCH", "XACK", "XADD", "XAUTOCLAIM", "XCLAIM", "XDEL", "XGROUP",
		"XINFO", "XLEN", "XPENDING", "XRANGE", "XREAD", "XREADGROUP", "XREVRANGE", "XSETID", "XTRIM", "ZADD",
		"ZCARD", "ZCOUNT", "ZDIFF", "ZDIFFSTORE", "ZINCRBY", "ZINTER", "ZINTERCARD", "ZINTERSTORE",
		"ZLEXCOUNT", "ZMPOP", "ZMSCORE", "ZPOPMAX", "ZPOPMIN", "ZRANDMEMBER", "ZRANGE", "ZRANGEBYLEX",
		"ZRANGEBYSCORE", "ZRANGESTORE", "ZRANK", "ZREM", "ZREMRANGEBYLEX", "ZREMRANGEBYRANK",
		"ZREMRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE", "ZREVRANK", "ZSCAN",
		"ZSCORE", "ZUNION", "ZUNIONSTORE",
		// Since (Redis 7.2 WAITAOF; hash field expiry, Redis 7.4 and
		// Valkey 9.0; Redis 8's hash and stream commands; Valkey 8.1
		// COMMANDLOG, 9.0 DELIFEQ). Arrays, integers and strings.
		"WAITAOF", "HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT", "HTTL", "HPTTL", "HEXPIRETIME",
		"HPEXPIRETIME", "HPERSIST", "HGETDEL", "HGETEX", "HSETEX", "XDELEX", "XACKDEL", "COMMANDLOG",
		"DELIFEQ",
	} {
		m[n] = n
	}
	return m
}()

// canonical returns the upper-case name of the server command name (in
// any case) and true, or false for a name not in coreCommands. It does
// not allocate.
func canonical(name string) (string, bool) {
	if n, ok := coreCommands[name]; ok {
		return n, true
	}
	var buf [24]byte // longer than any name in coreCommands
	if len(name) > len(buf) {
		return "", false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	n, ok := coreCommands[string(buf[:len(name)])]
	return n, ok
}
