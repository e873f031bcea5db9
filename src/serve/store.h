// Store: `hako serve`'s VM definitions and their last known run state, in one SQLite file (state-dir/hako.db).
//
// One table, `vms`: the name, the definition (JSON of VmConfig), and the run record the daemon needs after a
// restart to re-attach (the state it last recorded, the pid, the exit of the last run, restarts). Writes are single
// statements (atomic in SQLite); the file uses WAL so a crash leaves it consistent. Only the daemon's one thread
// uses a Store.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

struct sqlite3;

namespace hako::serve {

struct StoredVm {
    std::string name;
    std::string config; // JSON text
    std::string state { "stopped" };
    int64_t pid { 0 };
    std::optional<int> exit_status; // the last run's exit status, when known
    std::optional<int> exit_signal; // or the signal that ended it
    int64_t exit_at { 0 };          // unix seconds, 0 if it never ran
    int64_t restarts { 0 };
    int64_t created_at { 0 };
};

class Store final {
public:
    /// Opens (creating if needed) the database file and its schema.
    [[nodiscard]] static Result<std::unique_ptr<Store>> open(std::string const& path);
    ~Store();
    Store(Store const&) = delete;
    Store& operator=(Store const&) = delete;

    [[nodiscard]] Result<std::vector<StoredVm>> list();
    [[nodiscard]] Result<std::optional<StoredVm>> get(std::string const& name);
    /// Fails with Busy if the name exists.
    [[nodiscard]] Result<void> insert(StoredVm const& vm);
    [[nodiscard]] Result<void> update_config(std::string const& name, std::string const& config);
    /// Stores the run record (state, pid, exit, restarts).
    [[nodiscard]] Result<void> update_run(StoredVm const& vm);
    [[nodiscard]] Result<void> remove(std::string const& name);

private:
    explicit Store(sqlite3* db) : m_db(db) { }
    [[nodiscard]] Result<void> exec(char const* sql);
    sqlite3* m_db;
};

} // namespace hako::serve
