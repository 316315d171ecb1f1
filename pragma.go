package litefs

// SQLite applies many pragmas while it compiles them, before anything runs,
// so the driver decides a PRAGMA statement from its name alone and never
// prepares one it would refuse. The tables below sort every pragma SQLite
// 3.50 knows; a name in none of them is a write, so a pragma added to a
// later SQLite is refused on a replica until it is sorted here.

// pragmaSettings change only this connection (or nothing) when given a
// value: a replica may run them.
var pragmaSettings = set(
	"analysis_limit", "automatic_index", "busy_timeout", "cache_size", "cache_spill",
	"case_sensitive_like", "cell_size_check", "checkpoint_fullfsync", "count_changes",
	"defer_foreign_keys", "empty_result_callbacks", "foreign_keys", "full_column_names",
	"fullfsync", "hard_heap_limit", "ignore_check_constraints", "journal_size_limit",
	"legacy_alter_table", "max_page_count", "mmap_size", "read_uncommitted",
	"recursive_triggers", "reverse_unordered_selects", "secure_delete", "short_column_names",
	"shrink_memory", "soft_heap_limit", "synchronous", "temp_store", "threads",
	"trusted_schema", "wal_autocheckpoint", "writable_schema",
)

// pragmaReads only read, with or without an argument (a table name, a row
// limit): PRAGMA table_info(t), PRAGMA integrity_check(10).
var pragmaReads = set(
	"collation_list", "compile_options", "data_version", "database_list", "foreign_key_check",
	"foreign_key_list", "freelist_count", "function_list", "index_info", "index_list",
	"index_xinfo", "integrity_check", "module_list", "page_count", "pragma_list",
	"quick_check", "stats", "table_info", "table_list", "table_xinfo",
)

// pragmaValues are read without a value and write the database (or hold its
// lock: locking_mode) with one.
var pragmaValues = set(
	"application_id", "auto_vacuum", "encoding", "journal_mode", "locking_mode",
	"page_size", "schema_version", "user_version", "legacy_file_format",
	"data_store_directory", "temp_store_directory",
)

// pragmaArgs take a value in their table-valued form, pragma_x(value),
// which SQLite runs as PRAGMA x = value; for the others the one argument is
// a schema name.
var pragmaArgs = set(
	"foreign_key_check", "foreign_key_list", "index_info", "index_list", "index_xinfo",
	"integrity_check", "optimize", "quick_check", "table_info", "table_list", "table_xinfo",
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// pragmaClass is the class of PRAGMA name (lower case), given a value
// (= v or (v)) or not. optimize, wal_checkpoint and incremental_vacuum write
// with or without one; query_only with one is the driver's own.
func pragmaClass(name string, value bool) class {
	switch {
	case name == "query_only":
		if value {
			return classForbidden
		}
		return classRead
	case pragmaSettings[name] || pragmaReads[name]:
		return classRead
	case pragmaValues[name] && !value:
		return classRead
	}
	return classWrite
}

// pragmaFunctionClass is the class of a read of the table-valued function
// pragma_<name>, whose arguments the driver does not see.
func pragmaFunctionClass(name string) class {
	return pragmaClass(name, pragmaArgs[name])
}
