#include "serve/store.h"

#include <sqlite3.h>

namespace hako::serve {

namespace {

/// A prepared statement, finalized on scope exit.
class Statement final {
public:
    Statement(sqlite3* db, char const* sql) : m_db(db) { m_rc = sqlite3_prepare_v2(db, sql, -1, &m_stmt, nullptr); }
    ~Statement() { sqlite3_finalize(m_stmt); }
    Statement(Statement const&) = delete;
    Statement& operator=(Statement const&) = delete;

    bool ok() const { return m_rc == SQLITE_OK; }
    void bind(int i, std::string const& s) { sqlite3_bind_text(m_stmt, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT); }
    void bind(int i, int64_t v) { sqlite3_bind_int64(m_stmt, i, v); }
    void bind(int i, std::optional<int> v)
    {
        if (v)
            sqlite3_bind_int64(m_stmt, i, *v);
        else
            sqlite3_bind_null(m_stmt, i);
    }
    int step() { return sqlite3_step(m_stmt); }
    std::string text(int col) const
    {
        auto const* p = sqlite3_column_text(m_stmt, col);
        int const n = sqlite3_column_bytes(m_stmt, col);
        return p ? std::string(static_cast<char const*>(static_cast<void const*>(p)), static_cast<size_t>(n)) : std::string();
    }
    int64_t integer(int col) const { return sqlite3_column_int64(m_stmt, col); }
    std::optional<int> optional_int(int col) const
    {
        if (sqlite3_column_type(m_stmt, col) == SQLITE_NULL)
            return std::nullopt;
        return sqlite3_column_int(m_stmt, col);
    }
    Error error(std::string_view what) const
    {
        return Error(ErrorKind::Io, fmt::format("VM database: {}: {}", what, sqlite3_errmsg(m_db)));
    }

private:
    sqlite3* m_db;
    sqlite3_stmt* m_stmt { nullptr };
    int m_rc;
};

constexpr char const* COLUMNS = "name, config, state, pid, exit_status, exit_signal, exit_at, restarts, created_at";

StoredVm row(Statement const& s)
{
    StoredVm vm;
    vm.name = s.text(0);
    vm.config = s.text(1);
    vm.state = s.text(2);
    vm.pid = s.integer(3);
    vm.exit_status = s.optional_int(4);
    vm.exit_signal = s.optional_int(5);
    vm.exit_at = s.integer(6);
    vm.restarts = s.integer(7);
    vm.created_at = s.integer(8);
    return vm;
}

} // namespace

Result<std::unique_ptr<Store>> Store::open(std::string const& path)
{
    sqlite3* db = nullptr;
    int const rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        sqlite3_close(db);
        return Error(ErrorKind::Io, fmt::format("Cannot open the VM database {}: {}", path, msg));
    }
    std::unique_ptr<Store> store(new Store(db));
    sqlite3_busy_timeout(db, 2000);
    TRY(store->exec("PRAGMA journal_mode=WAL"));
    TRY(store->exec("CREATE TABLE IF NOT EXISTS vms ("
                    " name TEXT PRIMARY KEY NOT NULL,"
                    " config TEXT NOT NULL,"
                    " state TEXT NOT NULL DEFAULT 'stopped',"
                    " pid INTEGER NOT NULL DEFAULT 0,"
                    " exit_status INTEGER,"
                    " exit_signal INTEGER,"
                    " exit_at INTEGER NOT NULL DEFAULT 0,"
                    " restarts INTEGER NOT NULL DEFAULT 0,"
                    " created_at INTEGER NOT NULL DEFAULT 0)"));
    return store;
}

Store::~Store() { sqlite3_close(m_db); }

Result<void> Store::exec(char const* sql)
{
    char* err = nullptr;
    if (sqlite3_exec(m_db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        return Error(ErrorKind::Io, fmt::format("VM database: {}", msg));
    }
    return ok();
}

Result<std::vector<StoredVm>> Store::list()
{
    Statement s(m_db, fmt::format("SELECT {} FROM vms ORDER BY name", COLUMNS).c_str());
    if (!s.ok())
        return s.error("list");
    std::vector<StoredVm> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
        out.push_back(row(s));
    if (rc != SQLITE_DONE)
        return s.error("list");
    return out;
}

Result<std::optional<StoredVm>> Store::get(std::string const& name)
{
    Statement s(m_db, fmt::format("SELECT {} FROM vms WHERE name = ?1", COLUMNS).c_str());
    if (!s.ok())
        return s.error("get");
    s.bind(1, name);
    int const rc = s.step();
    if (rc == SQLITE_ROW)
        return std::optional<StoredVm>(row(s));
    if (rc != SQLITE_DONE)
        return s.error("get");
    return std::optional<StoredVm>();
}

Result<void> Store::insert(StoredVm const& vm)
{
    Statement s(m_db, fmt::format("INSERT INTO vms ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)", COLUMNS).c_str());
    if (!s.ok())
        return s.error("insert");
    s.bind(1, vm.name);
    s.bind(2, vm.config);
    s.bind(3, vm.state);
    s.bind(4, vm.pid);
    s.bind(5, vm.exit_status);
    s.bind(6, vm.exit_signal);
    s.bind(7, vm.exit_at);
    s.bind(8, vm.restarts);
    s.bind(9, vm.created_at);
    int const rc = s.step();
    if (rc == SQLITE_CONSTRAINT)
        return Error(ErrorKind::Busy, fmt::format("A VM named {} exists", vm.name));
    if (rc != SQLITE_DONE)
        return s.error("insert");
    return ok();
}

Result<void> Store::update_config(std::string const& name, std::string const& config)
{
    Statement s(m_db, "UPDATE vms SET config = ?2 WHERE name = ?1");
    if (!s.ok())
        return s.error("update");
    s.bind(1, name);
    s.bind(2, config);
    if (s.step() != SQLITE_DONE)
        return s.error("update");
    if (sqlite3_changes(m_db) == 0)
        return Error(ErrorKind::NotFound, fmt::format("No VM named {}", name));
    return ok();
}

Result<void> Store::update_run(StoredVm const& vm)
{
    Statement s(m_db, "UPDATE vms SET state = ?2, pid = ?3, exit_status = ?4, exit_signal = ?5, exit_at = ?6, "
                      "restarts = ?7 WHERE name = ?1");
    if (!s.ok())
        return s.error("update");
    s.bind(1, vm.name);
    s.bind(2, vm.state);
    s.bind(3, vm.pid);
    s.bind(4, vm.exit_status);
    s.bind(5, vm.exit_signal);
    s.bind(6, vm.exit_at);
    s.bind(7, vm.restarts);
    if (s.step() != SQLITE_DONE)
        return s.error("update");
    if (sqlite3_changes(m_db) == 0)
        return Error(ErrorKind::NotFound, fmt::format("No VM named {}", vm.name));
    return ok();
}

Result<void> Store::remove(std::string const& name)
{
    Statement s(m_db, "DELETE FROM vms WHERE name = ?1");
    if (!s.ok())
        return s.error("delete");
    s.bind(1, name);
    if (s.step() != SQLITE_DONE)
        return s.error("delete");
    if (sqlite3_changes(m_db) == 0)
        return Error(ErrorKind::NotFound, fmt::format("No VM named {}", name));
    return ok();
}

} // namespace hako::serve
