// Supervisor: the daemon's model of its VMs. It owns the Store, runs each VM as its own `hako run` process
// (posix_spawn of the daemon's own binary, in a new session so the VM outlives the daemon), drives it through the
// VM's API socket, keeps its serial console (two FIFOs in the VM's directory, so a restarted daemon can take the
// console back) and a bounded log of it, applies the restart policy, and publishes every state change as an event.
//
// Everything here runs on the daemon's io_context thread; no locks. Operations that wait for a VM (pause,
// resume: a reply from the VM's socket) or for a disk copy (clone: the CopyWorker's thread) complete through a
// callback on that thread.
//
// VM states: stopped, starting (process spawned, API socket not answering yet), running, paused, stopping
// (power button pressed; power off after the timeout, then SIGKILL), crashed (the process ended with a non-zero
// status or a signal nobody asked for), cloning (a clone whose disks the CopyWorker is still copying: it exists only
// in memory until the copy ends, then it is stored as stopped; its source can be neither started, edited nor
// deleted meanwhile).
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "api/api_server.h"
#include "base/result.h"
#include "serve/copy_worker.h"
#include "serve/store.h"
#include "serve/vm_config.h"

namespace hako::serve {

struct SupervisorOptions {
    std::string state_dir;     // holds hako.db, vms/NAME/, images/
    std::string hako_binary;   // the `hako` to run VMs with (the daemon's own executable)
    size_t console_log_bytes { 256 * 1024 }; // per VM: console.log is rotated to console.log.1 at this size
    size_t console_backlog_bytes { 64 * 1024 }; // kept in memory for clients that attach
};

using api::Reply;
using Done = std::function<void(Reply)>;

class Supervisor final {
public:
    /// Opens the store and re-attaches to VMs a previous daemon left running.
    [[nodiscard]] static Result<std::unique_ptr<Supervisor>> create(boost::asio::io_context& ioc, SupervisorOptions options);
    ~Supervisor();
    Supervisor(Supervisor const&) = delete;
    Supervisor& operator=(Supervisor const&) = delete;

    Reply list();
    Reply get(std::string const& name);
    Reply create_vm(nlohmann::json const& body);
    Reply edit(std::string const& name, nlohmann::json const& patch);
    Reply remove(std::string const& name);
    Reply list_images();
    Reply create_image(nlohmann::json const& body);
    Reply create_disk(std::string const& name, nlohmann::json const& body);
    Reply console_log(std::string const& name);

    /// Answers when the disks are copied (201), or at once when there is nothing to copy; meanwhile the new VM is
    /// listed in state cloning.
    void clone(std::string const& name, nlohmann::json const& body, Done done);
    void start(std::string const& name, Done done);
    void shutdown(std::string const& name, nlohmann::json const& body, Done done);
    void kill(std::string const& name, Done done);
    void reboot(std::string const& name, nlohmann::json const& body, Done done);
    void pause(std::string const& name, Done done);
    void resume(std::string const& name, Done done);

    /// Event stream: `listener` gets each event as a whole server-sent-events message ("event: ...\ndata: ...\n\n").
    /// Subscribing first delivers one "vm" event per existing VM (the current picture).
    int subscribe(std::function<void(std::string const&)> listener);
    void unsubscribe(int id);

    /// Console clients: `output` gets guest output (first the backlog); returns the id or 404/409 as a Reply.
    Result<int> attach_console(std::string const& name, std::function<void(std::string const&)> output, size_t backlog);
    void detach_console(std::string const& name, int id);
    /// The VNC socket of a VM that has one (vnc on) and is running or paused: NotFound without the VM, Busy otherwise.
    Result<std::string> vnc_socket(std::string const& name);
    /// Bytes typed into the console (dropped when the VM is not running or its input is full).
    void console_input(std::string const& name, std::string const& bytes);

    struct Vm;

private:
    Supervisor(boost::asio::io_context& ioc, SupervisorOptions options, std::unique_ptr<Store> store);
    void reattach_all();
    std::string vm_dir(std::string const& name) const;
    std::string images_dir() const;
    Vm* find(std::string const& name);
    nlohmann::json vm_json(Vm const& vm) const;
    void set_state(Vm& vm, std::string state);
    void publish(std::string const& event, nlohmann::json const& data);
    Result<void> spawn(Vm& vm);
    void watch_exit(Vm& vm);
    void on_exit(std::string const& name, uint64_t run_id);
    void open_console(Vm& vm, bool reattach);
    void read_console(Vm& vm);
    void console_output(Vm& vm, std::string const& data);
    void write_log(Vm& vm, std::string const& data);
    void wait_for_api(std::string const& name, uint64_t run_id, int tries_left);
    void begin_stop(Vm& vm, unsigned timeout_s);
    void send_signal(Vm& vm, int sig);
    void vm_action(std::string const& name, std::string const& action, std::string const& from, std::string const& to, Done done);
    void persist(Vm const& vm);
    std::optional<Reply> busy_cloning(Vm const& vm, std::string_view action) const;
    Reply commit_clone(std::unique_ptr<Vm> vm, std::vector<std::string> const& created);
    void clone_finished(std::string const& new_name, std::string const& source, std::vector<std::string> const& created,
        Result<block::CopyMethod> result, Done done);

    boost::asio::io_context& m_ioc;
    SupervisorOptions m_options;
    std::unique_ptr<Store> m_store;
    std::map<std::string, std::unique_ptr<Vm>> m_vms;
    std::map<int, std::function<void(std::string const&)>> m_listeners;
    int m_next_id { 1 };
    uint64_t m_next_run { 1 };
    uint64_t m_event_seq { 0 };
    std::unique_ptr<CopyWorker> m_copier; // last: its thread is joined before the rest goes
};

} // namespace hako::serve
