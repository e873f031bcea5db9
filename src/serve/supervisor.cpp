#include "serve/supervisor.h"

// Asio's templates use `0` for null pointers in default arguments.
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"

#include <boost/asio.hpp>
#include <chrono>
#include <csignal>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "block/image_format.h"
#include "block/qcow2.h"
#include "block/sparse_copy.h"
#include "serve/proc_usage.h"
#include "serve/vm_client.h"

extern char** environ;

namespace hako::serve {

namespace asio = boost::asio;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr unsigned DEFAULT_STOP_TIMEOUT_S = 30;
constexpr unsigned MAX_STOP_TIMEOUT_S = 3600;
constexpr auto KILL_GRACE = 5s;           // after the forced power off, before SIGKILL
constexpr int API_WAIT_TRIES = 600;        // 50 ms apart: 30 s for the VM's API socket to answer
constexpr auto RESTART_DELAY = 1s;
constexpr size_t RESTART_BURST = 5;        // restarts within RESTART_WINDOW before the policy gives up
constexpr auto RESTART_WINDOW = 60s;
constexpr uint64_t MAX_IMAGE_MIB = 64ull * 1024 * 1024; // 64 TiB

struct Supervisor::Vm {
    std::string name;
    VmConfig config;
    StoredVm run;
    std::string error; // why the last start or run failed, for people
    uint64_t run_id { 0 };
    pid_t pid { 0 };
    bool is_child { false };
    std::unique_ptr<asio::posix::stream_descriptor> pidfd;
    std::unique_ptr<asio::posix::stream_descriptor> console_out;
    int console_in { -1 };
    std::array<char, 4096> read_buffer {};
    std::string backlog;
    int log_fd { -1 };
    size_t log_size { 0 };
    std::map<int, std::function<void(std::string const&)>> consoles;
    bool stop_requested { false };
    bool reboot_pending { false };
    std::unique_ptr<asio::steady_timer> timer; // stop escalation or restart delay
    std::vector<Done> start_waiters, exit_waiters;
    std::deque<std::chrono::steady_clock::time_point> restart_times;

    unsigned clone_readers { 0 }; // clones copying this VM's disks now (they must not change meanwhile)
    std::string clone_source;     // while this VM is a clone in the making (state cloning): the VM it copies

    /// Whether a `hako run` process is (or is about to be) behind the VM.
    bool active() const { return run.state != "stopped" && run.state != "crashed" && run.state != "cloning"; }
    void close_console()
    {
        if (console_out) {
            beast_close();
        }
        if (console_in >= 0)
            ::close(console_in);
        console_in = -1;
        if (log_fd >= 0)
            ::close(log_fd);
        log_fd = -1;
    }
    void beast_close()
    {
        boost::system::error_code ignored;
        console_out->close(ignored);
        console_out.reset();
    }
};

namespace {

Reply from_error(Error const& e)
{
    switch (e.kind()) {
    case ErrorKind::InvalidArgument:
    case ErrorKind::OutOfRange:
        return Reply::error(400, e.message());
    case ErrorKind::NotFound:
        return Reply::error(404, e.message());
    case ErrorKind::Busy:
        return Reply::error(409, e.message());
    default:
        return Reply::error(500, e.message());
    }
}

Reply no_vm(std::string const& name) { return Reply::error(404, fmt::format("No VM named '{}'", name)); }

int64_t now_s() { return static_cast<int64_t>(std::time(nullptr)); }

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool fits_socket(std::string const& path) { return path.size() < sizeof(sockaddr_un {}.sun_path); }

/// Whether process `pid` is a `hako run` serving `api_socket` (guards against a recycled pid).
bool is_our_vm(pid_t pid, std::string const& api_socket)
{
    std::ifstream f(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::string const want = std::string("\0--api-socket\0", 14) + api_socket + std::string("\0", 1);
    return cmdline.find(std::string("\0run\0", 5)) != std::string::npos && cmdline.find(want) != std::string::npos;
}

Result<void> make_fifo(std::string const& path)
{
    ::unlink(path.c_str());
    if (::mkfifo(path.c_str(), 0600) != 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot create the FIFO {}", path));
    return ok();
}

Result<uint64_t> image_size_mib(json const& body)
{
    auto it = body.find("size_mib");
    if (it == body.end() || !it->is_number_unsigned() || it->get<uint64_t>() == 0 || it->get<uint64_t>() > MAX_IMAGE_MIB)
        return Error(ErrorKind::InvalidArgument, fmt::format("'size_mib' must be a whole number from 1 to {}", MAX_IMAGE_MIB));
    return it->get<uint64_t>();
}

} // namespace

Supervisor::Supervisor(asio::io_context& ioc, SupervisorOptions options, std::unique_ptr<Store> store)
    : m_ioc(ioc), m_options(std::move(options)), m_store(std::move(store)), m_copier(std::make_unique<CopyWorker>(ioc))
{
}

Supervisor::~Supervisor()
{
    // The VMs keep running: only the daemon's ends of their consoles close.
    for (auto& [name, vm] : m_vms)
        vm->close_console();
}

Result<std::unique_ptr<Supervisor>> Supervisor::create(asio::io_context& ioc, SupervisorOptions options)
{
    std::error_code ec;
    for (auto const* sub : { "", "/vms", "/images" }) {
        std::string const dir = options.state_dir + sub;
        std::filesystem::create_directories(dir, ec);
        if (ec)
            return Error(ErrorKind::Io, fmt::format("Cannot create {}: {}", dir, ec.message()));
        ::chmod(dir.c_str(), 0700);
    }
    auto store = TRY(Store::open(options.state_dir + "/hako.db"));
    std::unique_ptr<Supervisor> s(new Supervisor(ioc, std::move(options), std::move(store)));
    s->reattach_all();
    return s;
}

std::string Supervisor::vm_dir(std::string const& name) const { return m_options.state_dir + "/vms/" + name; }
std::string Supervisor::images_dir() const { return m_options.state_dir + "/images"; }

Supervisor::Vm* Supervisor::find(std::string const& name)
{
    auto it = m_vms.find(name);
    return it == m_vms.end() ? nullptr : it->second.get();
}

void Supervisor::reattach_all()
{
    auto stored = m_store->list();
    if (!stored) {
        HAKO_ERROR("{}", stored.error().message());
        return;
    }
    for (auto& row : *stored) {
        auto parsed = nlohmann::json::parse(row.config, nullptr, false);
        auto config = parsed.is_discarded() ? Result<VmConfig>(Error(ErrorKind::Format, "not JSON"))
                                            : config_from_json(parsed, images_dir());
        if (!config) {
            HAKO_ERROR("VM {}: stored definition is unusable ({}); skipped", row.name, config.error().message());
            continue;
        }
        auto vm = std::make_unique<Vm>();
        vm->name = row.name;
        vm->config = *config;
        vm->run = row;
        Vm& v = *vm;
        m_vms.emplace(row.name, std::move(vm));
        if (!v.active())
            continue;
        // A previous daemon left this VM running: find it by its pid file, check it is the same process.
        std::string const dir = vm_dir(v.name);
        pid_t pid = 0;
        std::ifstream(dir + "/hako.pid") >> pid;
        int fd = pid > 0 ? pidfd_open(pid) : -1;
        if (fd >= 0 && !is_our_vm(pid, dir + "/api.sock")) {
            ::close(fd);
            fd = -1;
        }
        if (fd < 0) {
            HAKO_INFO("VM {}: its process (pid {}) is gone", v.name, pid);
            v.run.state = "stopped";
            v.run.pid = 0;
            v.run.exit_status.reset();
            v.run.exit_signal.reset();
            v.run.exit_at = now_s();
            v.error = "The VM ended while the daemon was not running (exit status unknown)";
            persist(v);
            continue;
        }
        v.run_id = m_next_run++;
        v.pid = pid;
        v.run.pid = pid;
        v.is_child = false;
        v.pidfd = std::make_unique<asio::posix::stream_descriptor>(m_ioc, fd);
        open_console(v, true);
        watch_exit(v);
        HAKO_INFO("VM {}: re-attached to pid {}", v.name, pid);
        // The VM's own view decides running or paused.
        vm_request(m_ioc, dir + "/api.sock", "GET", "/api/v1/vm.info", 5s,
            [this, name = v.name, run_id = v.run_id](Result<VmReply> r) {
                Vm* found = find(name);
                if (!found || found->run_id != run_id || !found->active())
                    return;
                if (r && r->status == 200 && r->body.is_object() && r->body.value("state", "") == "paused")
                    set_state(*found, "paused");
                else if (found->run.state != "stopping")
                    set_state(*found, "running");
            });
    }
}

json Supervisor::vm_json(Vm const& vm) const
{
    json exit = nullptr;
    if (vm.run.exit_at != 0) {
        exit = { { "status", vm.run.exit_status ? json(*vm.run.exit_status) : json(nullptr) },
            { "signal", vm.run.exit_signal ? json(*vm.run.exit_signal) : json(nullptr) }, { "at", vm.run.exit_at } };
    }
    json usage = nullptr;
    if (vm.active() && vm.pid > 0) {
        if (auto u = read_proc_usage(vm.pid)) {
            auto const now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch());
            usage = { { "cpu_seconds", u->cpu_seconds }, { "rss_bytes", u->rss_bytes }, { "sampled_at_ms", now.count() } };
        }
    }
    return {
        { "name", vm.name },
        { "state", vm.run.state },
        { "pid", vm.active() ? json(vm.pid) : json(nullptr) },
        { "config", config_to_json(vm.config) },
        { "last_exit", exit },
        { "restarts", vm.run.restarts },
        { "error", vm.error },
        { "created_at", vm.run.created_at },
        { "usage", usage },
    };
}

void Supervisor::persist(Vm const& vm)
{
    if (auto r = m_store->update_run(vm.run); !r)
        HAKO_ERROR("VM {}: {}", vm.name, r.error().message());
}

void Supervisor::publish(std::string const& event, json const& data)
{
    std::string const message = fmt::format("id: {}\nevent: {}\ndata: {}\n\n", ++m_event_seq, event, data.dump());
    // A listener may unsubscribe while being called: iterate over a copy of the ids.
    std::vector<int> ids;
    for (auto const& [id, fn] : m_listeners)
        ids.push_back(id);
    for (int id : ids) {
        auto it = m_listeners.find(id);
        if (it != m_listeners.end())
            it->second(message);
    }
}

void Supervisor::set_state(Vm& vm, std::string state)
{
    vm.run.state = std::move(state);
    vm.run.pid = vm.active() ? vm.pid : 0;
    persist(vm);
    publish("vm", vm_json(vm));
}

int Supervisor::subscribe(std::function<void(std::string const&)> listener)
{
    int const id = m_next_id++;
    for (auto const& [name, vm] : m_vms)
        listener(fmt::format("event: vm\ndata: {}\n\n", vm_json(*vm).dump()));
    m_listeners.emplace(id, std::move(listener));
    return id;
}

void Supervisor::unsubscribe(int id) { m_listeners.erase(id); }

Reply Supervisor::list()
{
    json out = json::array();
    for (auto const& [name, vm] : m_vms)
        out.push_back(vm_json(*vm));
    return Reply(200, out);
}

Reply Supervisor::get(std::string const& name)
{
    Vm* vm = find(name);
    return vm ? Reply(200, vm_json(*vm)) : no_vm(name);
}

Reply Supervisor::create_vm(json const& body)
{
    if (!body.is_object())
        return Reply::error(400, "The body must be a JSON object with 'name' and the VM's definition");
    auto const name_it = body.find("name");
    if (name_it == body.end() || !name_it->is_string() || !valid_vm_name(name_it->get<std::string>()))
        return Reply::error(400, "'name' must match [A-Za-z0-9][A-Za-z0-9_.-]{0,62}");
    std::string const name = name_it->get<std::string>();
    json definition = body;
    definition.erase("name");
    auto config = config_from_json(definition, images_dir());
    if (!config)
        return from_error(config.error());
    if (find(name))
        return Reply::error(409, fmt::format("A VM named '{}' exists", name));
    auto vm = std::make_unique<Vm>();
    vm->name = name;
    vm->config = *config;
    vm->run.name = name;
    vm->run.config = config_to_json(*config).dump();
    vm->run.created_at = now_s();
    if (auto r = m_store->insert(vm->run); !r)
        return from_error(r.error());
    Vm& v = *vm;
    m_vms.emplace(name, std::move(vm));
    publish("vm", vm_json(v));
    return Reply(201, vm_json(v));
}

Reply Supervisor::edit(std::string const& name, json const& patch)
{
    Vm* vm = find(name);
    if (!vm)
        return no_vm(name);
    if (patch.is_object() && patch.contains("name"))
        return Reply::error(400, "A VM cannot be renamed (clone it)");
    auto config = config_patch(vm->config, patch, images_dir());
    if (!config)
        return from_error(config.error());
    if (vm->active())
        return Reply::error(409, fmt::format("VM '{}' is {}: stop it before editing", name, vm->run.state));
    if (auto busy = busy_cloning(*vm, "edited"))
        return std::move(*busy);
    if (auto r = m_store->update_config(name, config_to_json(*config).dump()); !r)
        return from_error(r.error());
    vm->config = *config;
    publish("vm", vm_json(*vm));
    return Reply(200, vm_json(*vm));
}

std::optional<Reply> Supervisor::busy_cloning(Vm const& vm, std::string_view action) const
{
    if (vm.run.state == "cloning")
        return Reply::error(409, fmt::format("VM '{}' is a clone of '{}' whose disks are still being copied: it cannot be {} "
                                             "until the copy has ended", vm.name, vm.clone_source, action));
    if (vm.clone_readers > 0)
        return Reply::error(409, fmt::format("VM '{}' is being cloned (its disks are being copied): it cannot be {} until "
                                             "the copy has ended", vm.name, action));
    return std::nullopt;
}

void Supervisor::clone(std::string const& name, json const& body, Done done)
{
    Vm* src = find(name);
    if (!src)
        return done(no_vm(name));
    if (!body.is_object() || !body.contains("name") || !body["name"].is_string() || !valid_vm_name(body["name"].get<std::string>()))
        return done(Reply::error(400, "'name' (the new VM's) must match [A-Za-z0-9][A-Za-z0-9_.-]{0,62}"));
    for (auto const& [key, value] : body.items())
        if (key != "name")
            return done(Reply::error(400, fmt::format("Unknown key '{}'", key)));
    std::string const new_name = body["name"].get<std::string>();
    if (find(new_name))
        return done(Reply::error(409, fmt::format("A VM named '{}' exists", new_name)));
    if (src->active())
        return done(Reply::error(409, fmt::format("VM '{}' is {}: stop it before cloning (its disks are copied)", name, src->run.state)));
    if (src->run.state == "cloning")
        return done(*busy_cloning(*src, "cloned"));
    // Disks in images/ are copied (NEW-diskN.FORMAT) on the CopyWorker's thread; disks elsewhere are shared (hako's
    // image lock keeps two running VMs from writing one image). The files are opened here, so the targets' names are
    // taken (O_EXCL) and a missing source is reported before anything is queued.
    VmConfig config = src->config;
    std::string const prefix = images_dir() + "/";
    std::vector<CopyFile> files;
    std::vector<std::string> created;
    auto fail = [&](Reply r) {
        files.clear();
        for (auto const& f : created)
            ::unlink(f.c_str());
        done(std::move(r));
    };
    for (size_t i = 0; i < config.disks.size(); i++) {
        auto& d = config.disks[i];
        if (d.path.rfind(prefix, 0) != 0)
            continue;
        std::string const target = fmt::format("{}{}-disk{}.{}", prefix, new_name, i, d.format);
        UniqueFd in(::open(d.path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!in.valid())
            return fail(Reply::error(500, fmt::format("Cannot open the disk image {}: {}", d.path, std::strerror(errno))));
        UniqueFd out(::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        if (!out.valid()) {
            int const err = errno;
            return fail(Reply::error(err == EEXIST ? 409 : 500, fmt::format("Cannot create {}: {}", target, std::strerror(err))));
        }
        created.push_back(target);
        files.push_back(CopyFile { std::move(in), std::move(out), d.path, target });
        d.path = target;
    }
    auto vm = std::make_unique<Vm>();
    vm->name = new_name;
    vm->config = config;
    vm->run.name = new_name;
    vm->run.config = config_to_json(config).dump();
    vm->run.created_at = now_s();
    if (files.empty())
        return done(commit_clone(std::move(vm), created));
    size_t const count = files.size();
    CopyWorker::Finished finished = [this, new_name, name, created, done](Result<block::CopyMethod> result) {
        clone_finished(new_name, name, created, std::move(result), done);
    };
    if (auto r = m_copier->submit(files, finished); !r)
        return fail(Reply::error(503, r.error().message()));
    vm->run.state = "cloning";
    vm->clone_source = name;
    src->clone_readers++;
    Vm& v = *vm;
    m_vms.emplace(new_name, std::move(vm));
    HAKO_INFO("VM {}: cloning {} ({} disk(s) to copy)", new_name, name, count);
    publish("vm", vm_json(v));
}

Reply Supervisor::commit_clone(std::unique_ptr<Vm> vm, std::vector<std::string> const& created)
{
    vm->run.state = "stopped";
    vm->clone_source.clear();
    if (auto r = m_store->insert(vm->run); !r) {
        for (auto const& f : created)
            ::unlink(f.c_str());
        return from_error(r.error());
    }
    Vm& v = *vm;
    m_vms.emplace(v.name, std::move(vm));
    publish("vm", vm_json(v));
    return Reply(201, vm_json(v));
}

void Supervisor::clone_finished(std::string const& new_name, std::string const& source, std::vector<std::string> const& created,
    Result<block::CopyMethod> result, Done done)
{
    if (Vm* s = find(source); s && s->clone_readers > 0)
        s->clone_readers--;
    auto it = m_vms.find(new_name);
    if (it == m_vms.end() || it->second->run.state != "cloning") { // cannot happen: a VM that is cloning is not deleted
        for (auto const& f : created)
            ::unlink(f.c_str());
        return done(Reply::error(500, fmt::format("VM '{}' went away while its disks were copied", new_name)));
    }
    std::unique_ptr<Vm> vm = std::move(it->second);
    m_vms.erase(it);
    Reply reply = result ? commit_clone(std::move(vm), created)
                         : Reply::error(result.error().sys_errno() == ENOSPC || result.error().sys_errno() == EDQUOT ? 507 : 500,
                             result.error().message());
    if (reply.status == 201) {
        HAKO_INFO("VM {}: the disks of {} are copied ({})", new_name, source, block::copy_method_name(*result));
    } else {
        // The worker removed the partial copies (commit_clone the whole ones when the store refused the VM).
        HAKO_WARN("VM {}: the clone of {} failed: {}", new_name, source, reply.body.value("error", ""));
        publish("vm-deleted", { { "name", new_name }, { "error", reply.body.value("error", "") } });
    }
    done(std::move(reply));
}

Reply Supervisor::remove(std::string const& name)
{
    Vm* vm = find(name);
    if (!vm)
        return no_vm(name);
    if (vm->active())
        return Reply::error(409, fmt::format("VM '{}' is {}: stop it before deleting", name, vm->run.state));
    if (auto busy = busy_cloning(*vm, "deleted"))
        return std::move(*busy);
    if (auto r = m_store->remove(name); !r)
        return from_error(r.error());
    vm->close_console();
    if (vm->timer)
        vm->timer->cancel();
    std::error_code ec;
    std::filesystem::remove_all(vm_dir(name), ec); // the console logs; disk images stay
    m_vms.erase(name);
    publish("vm-deleted", { { "name", name } });
    return Reply::no_content();
}

Reply Supervisor::list_images()
{
    // Which VMs name each image, and which images are clones still being written.
    std::map<std::string, std::vector<std::string>> users;
    std::map<std::string, bool> copying;
    for (auto const& [name, vm] : m_vms) {
        for (auto const& d : vm->config.disks) {
            users[d.path].push_back(name);
            if (vm->run.state == "cloning")
                copying[d.path] = true;
        }
    }
    std::vector<std::string> names;
    std::error_code ec;
    for (auto const& entry : std::filesystem::directory_iterator(images_dir(), ec)) {
        std::string const name = entry.path().filename().string();
        if (valid_image_name(name))
            names.push_back(name);
    }
    if (ec)
        return Reply::error(500, fmt::format("Cannot list {}: {}", images_dir(), ec.message()));
    std::sort(names.begin(), names.end());
    json out = json::array();
    for (auto const& name : names) {
        std::string const path = images_dir() + "/" + name;
        // Regular files only, never through a symlink; a FIFO is not opened for reading (O_NONBLOCK, then checked).
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        struct stat st {};
        if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        // qcow2: the magic, a known version, and the virtual size at offset 24 (big-endian); anything else is raw.
        std::array<uint8_t, 32> header {};
        ssize_t const n = ::pread(fd.get(), header.data(), header.size(), 0);
        auto const format = block::detect_format(std::span<uint8_t const>(header.data(), n > 0 ? static_cast<size_t>(n) : 0));
        uint64_t size = static_cast<uint64_t>(st.st_size);
        if (format == block::ImageFormat::Qcow2 && n == static_cast<ssize_t>(header.size())) {
            size = 0;
            for (size_t i = 24; i < 32; i++)
                size = size << 8 | header[i];
        }
        auto const u = users.find(path);
        out.push_back({
            { "name", name },
            { "path", path },
            { "format", std::string(block::to_string(format)) },
            { "size_bytes", size },
            { "allocated_bytes", static_cast<uint64_t>(st.st_blocks) * 512 },
            { "used_by", u == users.end() ? json::array() : json(u->second) },
            { "state", copying.contains(path) ? "copying" : "ready" },
        });
    }
    return Reply(200, out);
}

Reply Supervisor::create_image(json const& body)
{
    if (!body.is_object())
        return Reply::error(400, "The body must be a JSON object: {\"name\", \"format\", \"size_mib\"}");
    std::string name, format = "qcow2";
    for (auto const& [key, value] : body.items()) {
        if (key == "name" && value.is_string())
            name = value.get<std::string>();
        else if (key == "format" && value.is_string())
            format = value.get<std::string>();
        else if (key != "size_mib")
            return Reply::error(400, fmt::format("Unknown or mistyped key '{}'", key));
    }
    if (!valid_image_name(name))
        return Reply::error(400, "'name' must match [A-Za-z0-9][A-Za-z0-9_.-]{0,62} (a file in images/)");
    if (format != "raw" && format != "qcow2")
        return Reply::error(400, "'format' must be raw or qcow2");
    auto mib = image_size_mib(body);
    if (!mib)
        return from_error(mib.error());
    std::string const path = images_dir() + "/" + name;
    uint64_t const size = *mib * 1024 * 1024;
    if (::access(path.c_str(), F_OK) == 0)
        return Reply::error(409, fmt::format("The image {} exists", path));
    if (format == "raw") {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return Reply::error(errno == EEXIST ? 409 : 500, fmt::format("Cannot create {}: {}", path, std::strerror(errno)));
        bool const sized = ::ftruncate(fd, static_cast<off_t>(size)) == 0;
        ::close(fd);
        if (!sized) {
            ::unlink(path.c_str());
            return Reply::error(500, fmt::format("Cannot size {}", path));
        }
    } else if (auto r = block::Qcow2Image::create(path, size); !r) {
        return from_error(r.error());
    }
    return Reply(201, { { "path", path }, { "format", format }, { "size_mib", *mib } });
}

Reply Supervisor::create_disk(std::string const& name, json const& body)
{
    Vm* vm = find(name);
    if (!vm)
        return no_vm(name);
    if (!body.is_object())
        return Reply::error(400, "The body must be a JSON object");
    if (vm->active())
        return Reply::error(409, fmt::format("VM '{}' is {}: stop it before adding a disk", name, vm->run.state));
    if (auto busy = busy_cloning(*vm, "given a disk"))
        return std::move(*busy);
    // With size_mib: create the image in images/ first ({"name", "format", "size_mib"}); then attach
    // {"path"|"name", "format", "if", "readonly"}.
    json disk = json::object();
    json image = json::object();
    for (auto const& [key, value] : body.items()) {
        if (key == "name" || key == "size_mib")
            image[key] = value;
        else if (key == "format")
            image[key] = disk[key] = value;
        else if (key == "path" || key == "if" || key == "readonly")
            disk[key] = value;
        else
            return Reply::error(400, fmt::format("Unknown key '{}'", key));
    }
    if (body.contains("size_mib")) {
        if (body.contains("path"))
            return Reply::error(400, "Give 'name' (a new image in images/) with 'size_mib', not 'path'");
        if (!disk.contains("format"))
            image["format"] = disk["format"] = "qcow2";
        disk["path"] = image.value("name", json(""));
    } else if (body.contains("name")) {
        disk["path"] = body["name"];
    }
    std::vector<json> disks;
    for (auto const& d : config_to_json(vm->config)["disks"])
        disks.push_back(d);
    disks.push_back(disk);
    // Validate the attachment before creating anything.
    auto config = config_patch(vm->config, { { "disks", disks } }, images_dir());
    if (!config)
        return from_error(config.error());
    if (body.contains("size_mib")) {
        Reply created = create_image(image);
        if (created.status != 201)
            return created;
    }
    if (auto r = m_store->update_config(name, config_to_json(*config).dump()); !r)
        return from_error(r.error());
    vm->config = *config;
    publish("vm", vm_json(*vm));
    return Reply(201, vm_json(*vm));
}

Reply Supervisor::console_log(std::string const& name)
{
    Vm* vm = find(name);
    if (!vm)
        return no_vm(name);
    std::string text;
    for (auto const* file : { "/console.log.1", "/console.log" }) {
        std::ifstream f(vm_dir(name) + file, std::ios::binary);
        text.append(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    return Reply::bytes("text/plain; charset=utf-8", std::move(text));
}

Result<void> Supervisor::spawn(Vm& vm)
{
    std::string const dir = vm_dir(vm.name);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
        return Error(ErrorKind::Io, fmt::format("Cannot create {}: {}", dir, ec.message()));
    ::chmod(dir.c_str(), 0700);
    RunPaths paths { dir + "/api.sock", dir + "/vnc.sock" };
    if (!fits_socket(paths.api_socket) || !fits_socket(paths.vnc_socket))
        return Error(ErrorKind::InvalidArgument,
            fmt::format("The socket path {} is too long for a unix socket: use a shorter --state-dir", paths.api_socket));
    ::unlink(paths.api_socket.c_str());
    TRY(make_fifo(dir + "/console.in"));
    TRY(make_fifo(dir + "/console.out"));
    // The VM's ends: its stdout opened read-write and non-blocking (a FIFO that always has a reader, so writes never
    // raise SIGPIPE, and output is dropped, not blocking the VM, while no daemon reads); its stdin read-write (never
    // EOF when the daemon goes away). The daemon's ends are opened separately, so a restarted daemon opens them again.
    int const child_out = ::open((dir + "/console.out").c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    int const child_in = ::open((dir + "/console.in").c_str(), O_RDWR | O_CLOEXEC);
    std::string const log_path = dir + "/hako.log";
    struct stat st {};
    bool const rotate = ::stat(log_path.c_str(), &st) == 0 && st.st_size > 1024 * 1024;
    int const child_err = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (rotate ? O_TRUNC : 0), 0600);
    auto close_child = [&] {
        for (int fd : { child_out, child_in, child_err })
            if (fd >= 0)
                ::close(fd);
    };
    if (child_out < 0 || child_in < 0 || child_err < 0) {
        close_child();
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot open the console FIFOs or log in {}", dir));
    }
    std::vector<std::string> args = run_argv(vm.config, paths);
    args.insert(args.begin(), m_options.hako_binary);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_in, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, child_out, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, child_err, STDERR_FILENO);
    // Nothing else of the daemon's (sockets Asio opened without CLOEXEC, client connections) reaches the VM: a
    // connection a VM held open would never see its end.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    // Its own session: the VM survives the daemon and a Ctrl-C on the daemon's terminal.
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    int const rc = ::posix_spawn(&pid, m_options.hako_binary.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    close_child();
    if (rc != 0)
        return Error::from_errno(ErrorKind::Io, fmt::format("Cannot run {}", m_options.hako_binary), rc);
    int const fd = pidfd_open(pid);
    if (fd < 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        return Error::from_errno(ErrorKind::Io, "pidfd_open");
    }
    std::ofstream(dir + "/hako.pid") << pid << "\n";
    vm.run_id = m_next_run++;
    vm.pid = pid;
    vm.is_child = true;
    vm.pidfd = std::make_unique<asio::posix::stream_descriptor>(m_ioc, fd);
    HAKO_INFO("VM {}: started pid {}", vm.name, pid);
    open_console(vm, false);
    // A marker in the kept log (not in the live console) so a reader can tell the runs apart.
    write_log(vm, fmt::format("\n--- hako serve: started pid {} ---\n", pid));
    watch_exit(vm);
    return ok();
}

void Supervisor::open_console(Vm& vm, bool reattach)
{
    std::string const dir = vm_dir(vm.name);
    int const out = ::open((dir + "/console.out").c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (out >= 0) {
        vm.console_out = std::make_unique<asio::posix::stream_descriptor>(m_ioc, out);
        read_console(vm);
    } else {
        HAKO_WARN("VM {}: no console output ({})", vm.name, std::strerror(errno));
    }
    vm.console_in = ::open((dir + "/console.in").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (vm.console_in < 0)
        HAKO_WARN("VM {}: no console input ({})", vm.name, std::strerror(errno));
    if (reattach) {
        // The backlog a re-attached daemon shows is what the log file kept.
        std::ifstream f(dir + "/console.log", std::ios::binary);
        std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        if (text.size() > m_options.console_backlog_bytes)
            text.erase(0, text.size() - m_options.console_backlog_bytes);
        vm.backlog = std::move(text);
    } else {
        vm.backlog.clear();
    }
}

void Supervisor::read_console(Vm& vm)
{
    vm.console_out->async_read_some(asio::buffer(vm.read_buffer),
        [this, name = vm.name, run_id = vm.run_id](boost::system::error_code ec, size_t n) {
            Vm* v = find(name);
            if (!v || v->run_id != run_id || !v->console_out)
                return;
            if (n > 0)
                console_output(*v, std::string(v->read_buffer.data(), n));
            if (ec) {
                if (ec != asio::error::operation_aborted)
                    v->beast_close(); // EOF: the VM's end is closed
                return;
            }
            read_console(*v);
        });
}

void Supervisor::write_log(Vm& vm, std::string const& data)
{
    std::string const log = vm_dir(vm.name) + "/console.log";
    if (vm.log_fd >= 0 && vm.log_size + data.size() > m_options.console_log_bytes) {
        ::close(vm.log_fd);
        vm.log_fd = -1;
        std::rename(log.c_str(), (log + ".1").c_str());
    }
    if (vm.log_fd < 0) {
        vm.log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct stat st {};
        vm.log_size = vm.log_fd >= 0 && ::fstat(vm.log_fd, &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
    }
    if (vm.log_fd >= 0 && ::write(vm.log_fd, data.data(), data.size()) > 0)
        vm.log_size += data.size();
}

void Supervisor::console_output(Vm& vm, std::string const& data)
{
    vm.backlog += data;
    if (vm.backlog.size() > m_options.console_backlog_bytes)
        vm.backlog.erase(0, vm.backlog.size() - m_options.console_backlog_bytes);
    write_log(vm, data);
    std::vector<int> ids;
    for (auto const& [id, fn] : vm.consoles)
        ids.push_back(id);
    for (int id : ids) {
        auto it = vm.consoles.find(id);
        if (it != vm.consoles.end())
            it->second(data);
    }
}

Result<int> Supervisor::attach_console(std::string const& name, std::function<void(std::string const&)> output, size_t backlog)
{
    Vm* vm = find(name);
    if (!vm)
        return Error(ErrorKind::NotFound, fmt::format("No VM named '{}'", name));
    int const id = m_next_id++;
    if (backlog > 0 && !vm->backlog.empty())
        output(vm->backlog.substr(vm->backlog.size() - std::min(backlog, vm->backlog.size())));
    vm->consoles.emplace(id, std::move(output));
    return id;
}

Result<std::string> Supervisor::vnc_socket(std::string const& name)
{
    Vm* vm = find(name);
    if (!vm)
        return Error(ErrorKind::NotFound, fmt::format("No VM named '{}'", name));
    if (!vm->config.vnc)
        return Error(ErrorKind::Busy, fmt::format("VM {} has no VNC server (vnc: true, vga: std)", name));
    if (vm->run.state != "running" && vm->run.state != "paused")
        return Error(ErrorKind::Busy, fmt::format("VM {} is {}", name, vm->run.state));
    return vm_dir(name) + "/vnc.sock";
}

void Supervisor::detach_console(std::string const& name, int id)
{
    if (Vm* vm = find(name))
        vm->consoles.erase(id);
}

void Supervisor::console_input(std::string const& name, std::string const& bytes)
{
    Vm* vm = find(name);
    if (!vm || vm->console_in < 0 || !vm->active())
        return;
    ssize_t const n = ::write(vm->console_in, bytes.data(), bytes.size());
    if (n < static_cast<ssize_t>(bytes.size()))
        HAKO_WARN_RATELIMITED("VM {}: console input dropped (the VM does not read it)", name);
}

void Supervisor::watch_exit(Vm& vm)
{
    vm.pidfd->async_wait(asio::posix::stream_descriptor::wait_read,
        [this, name = vm.name, run_id = vm.run_id](boost::system::error_code ec) {
            if (ec == asio::error::operation_aborted)
                return;
            on_exit(name, run_id);
        });
}

void Supervisor::on_exit(std::string const& name, uint64_t run_id)
{
    Vm* vm = find(name);
    if (!vm || vm->run_id != run_id)
        return;
    vm->run.exit_status.reset();
    vm->run.exit_signal.reset();
    if (vm->is_child) {
        int status = 0;
        if (::waitpid(vm->pid, &status, 0) == vm->pid) {
            if (WIFEXITED(status))
                vm->run.exit_status = WEXITSTATUS(status);
            else if (WIFSIGNALED(status))
                vm->run.exit_signal = WTERMSIG(status);
        }
    }
    vm->run.exit_at = now_s();
    // What is left in the console FIFO is the VM's last output.
    if (vm->console_out) {
        std::array<char, 4096> buf {};
        for (int i = 0; i < 64; i++) {
            ssize_t const n = ::read(vm->console_out->native_handle(), buf.data(), buf.size());
            if (n <= 0)
                break;
            console_output(*vm, std::string(buf.data(), static_cast<size_t>(n)));
        }
    }
    vm->close_console();
    if (vm->pidfd) {
        boost::system::error_code ignored;
        vm->pidfd->close(ignored);
        vm->pidfd.reset();
    }
    if (vm->timer)
        vm->timer->cancel();
    std::string const dir = vm_dir(name);
    ::unlink((dir + "/hako.pid").c_str());
    bool const clean = vm->run.exit_status && *vm->run.exit_status == 0;
    bool const unknown = !vm->run.exit_status && !vm->run.exit_signal;
    bool const asked = vm->stop_requested;
    bool const reboot = vm->reboot_pending;
    vm->stop_requested = false;
    vm->reboot_pending = false;
    if (!asked && !clean && !unknown)
        vm->error = vm->run.exit_signal ? fmt::format("hako run was killed by signal {}", *vm->run.exit_signal)
                                        : fmt::format("hako run exited with status {} (see {}/hako.log)", *vm->run.exit_status, dir);
    HAKO_INFO("VM {}: pid {} ended ({})", name, vm->pid, vm->run.exit_signal ? fmt::format("signal {}", *vm->run.exit_signal)
            : vm->run.exit_status ? fmt::format("status {}", *vm->run.exit_status) : std::string("status unknown"));
    bool const was_starting = vm->run.state == "starting";
    set_state(*vm, asked || clean || unknown ? "stopped" : "crashed");
    auto start_waiters = std::move(vm->start_waiters);
    vm->start_waiters.clear();
    for (auto& w : start_waiters)
        w(Reply::error(was_starting ? 500 : 409,
            fmt::format("VM '{}' ended while starting: {}", name, vm->error.empty() ? std::string("it was stopped") : vm->error)));
    auto exit_waiters = std::move(vm->exit_waiters);
    vm->exit_waiters.clear();
    for (auto& w : exit_waiters)
        w(Reply(200, vm_json(*vm)));

    // The restart policy (and reboot).
    bool restart = reboot;
    if (!asked && !restart) {
        bool const failed = vm->run.state == "crashed";
        restart = vm->config.restart == RestartPolicy::Always || (vm->config.restart == RestartPolicy::OnFailure && failed);
        auto const now = std::chrono::steady_clock::now();
        while (!vm->restart_times.empty() && now - vm->restart_times.front() > RESTART_WINDOW)
            vm->restart_times.pop_front();
        if (restart && vm->restart_times.size() >= RESTART_BURST) {
            vm->error = fmt::format("Restarted {} times within {} s: the restart policy gives up", RESTART_BURST,
                std::chrono::duration_cast<std::chrono::seconds>(RESTART_WINDOW).count());
            restart = false;
            publish("vm", vm_json(*vm));
        }
        if (restart)
            vm->restart_times.push_back(now);
    }
    if (!restart)
        return;
    vm->timer = std::make_unique<asio::steady_timer>(m_ioc, reboot ? std::chrono::steady_clock::duration(0) : RESTART_DELAY);
    uint64_t const expected_run = vm->run_id;
    vm->timer->async_wait([this, name, expected_run, reboot](boost::system::error_code ec) {
        Vm* v = find(name);
        if (ec || !v || v->run_id != expected_run || v->active())
            return; // deleted, or started or stopped by someone in the meantime
        if (!reboot)
            v->run.restarts++;
        start(name, [name](Reply r) {
            if (r.status >= 300)
                HAKO_WARN("VM {}: restart failed: {}", name, r.body.value("error", ""));
        });
    });
}

void Supervisor::wait_for_api(std::string const& name, uint64_t run_id, int tries_left)
{
    Vm* vm = find(name);
    if (!vm || vm->run_id != run_id || vm->run.state != "starting")
        return;
    vm_request(m_ioc, vm_dir(name) + "/api.sock", "GET", "/api/v1/vmm.ping", 2s,
        [this, name, run_id, tries_left](Result<VmReply> r) {
            Vm* v = find(name);
            if (!v || v->run_id != run_id || v->run.state != "starting")
                return;
            if (r && r->status == 200) {
                v->error.clear();
                set_state(*v, "running");
                auto waiters = std::move(v->start_waiters);
                v->start_waiters.clear();
                for (auto& w : waiters)
                    w(Reply(200, vm_json(*v)));
                return;
            }
            if (tries_left <= 0) {
                v->error = "The VM's API socket did not answer in time";
                v->stop_requested = false;
                send_signal(*v, SIGKILL);
                return; // on_exit answers the waiters
            }
            auto t = std::make_shared<asio::steady_timer>(m_ioc, 50ms);
            t->async_wait([this, t, name, run_id, tries_left](boost::system::error_code) {
                wait_for_api(name, run_id, tries_left - 1);
            });
        });
}

void Supervisor::start(std::string const& name, Done done)
{
    Vm* vm = find(name);
    if (!vm)
        return done(no_vm(name));
    if (vm->active())
        return done(Reply::error(409, fmt::format("VM '{}' is {}", name, vm->run.state)));
    if (auto busy = busy_cloning(*vm, "started"))
        return done(std::move(*busy));
    if (vm->timer)
        vm->timer->cancel();
    vm->stop_requested = false;
    vm->reboot_pending = false;
    vm->error.clear();
    if (auto r = spawn(*vm); !r) {
        vm->error = r.error().message();
        publish("vm", vm_json(*vm));
        return done(from_error(r.error()));
    }
    vm->start_waiters.push_back(std::move(done));
    set_state(*vm, "starting");
    wait_for_api(name, vm->run_id, API_WAIT_TRIES);
}

void Supervisor::send_signal(Vm& vm, int sig)
{
    if (!vm.pidfd)
        return;
    if (::syscall(SYS_pidfd_send_signal, vm.pidfd->native_handle(), sig, nullptr, 0) != 0 && errno != ESRCH)
        HAKO_WARN("VM {}: cannot send signal {}: {}", vm.name, sig, std::strerror(errno));
}

void Supervisor::begin_stop(Vm& vm, unsigned timeout_s)
{
    vm.stop_requested = true;
    std::string const api = vm_dir(vm.name) + "/api.sock";
    std::string const previous = vm.run.state;
    set_state(vm, "stopping");
    auto on_reply = [](Result<VmReply>) { };
    if (previous == "running")
        vm_request(m_ioc, api, "PUT", "/api/v1/vm.power-button", 5s, on_reply);
    else if (previous == "paused")
        vm_request(m_ioc, api, "PUT", "/api/v1/vm.power-off", 5s, on_reply); // a paused guest cannot see the button
    else
        send_signal(vm, SIGTERM); // starting: no API yet
    vm.timer = std::make_unique<asio::steady_timer>(m_ioc, std::chrono::seconds(timeout_s));
    vm.timer->async_wait([this, name = vm.name, run_id = vm.run_id, api](boost::system::error_code ec) {
        Vm* v = find(name);
        if (ec || !v || v->run_id != run_id || !v->active())
            return;
        HAKO_INFO("VM {}: still running after the power button: powering it off", name);
        vm_request(m_ioc, api, "PUT", "/api/v1/vm.power-off", 5s, [](Result<VmReply>) { });
        v->timer = std::make_unique<asio::steady_timer>(m_ioc, KILL_GRACE);
        v->timer->async_wait([this, name, run_id](boost::system::error_code ec2) {
            Vm* w = find(name);
            if (ec2 || !w || w->run_id != run_id || !w->active())
                return;
            HAKO_WARN("VM {}: still running after the power off: SIGKILL", name);
            send_signal(*w, SIGKILL);
        });
    });
}

namespace {

Result<unsigned> stop_timeout(json const& body)
{
    if (body.is_null())
        return DEFAULT_STOP_TIMEOUT_S;
    if (!body.is_object())
        return Error(ErrorKind::InvalidArgument, "The body must be a JSON object");
    unsigned t = DEFAULT_STOP_TIMEOUT_S;
    for (auto const& [key, value] : body.items()) {
        if (key != "timeout_s")
            return Error(ErrorKind::InvalidArgument, fmt::format("Unknown key '{}'", key));
        if (!value.is_number_unsigned() || value.get<uint64_t>() > MAX_STOP_TIMEOUT_S)
            return Error(ErrorKind::InvalidArgument, fmt::format("'timeout_s' must be a whole number from 0 to {}", MAX_STOP_TIMEOUT_S));
        t = value.get<unsigned>();
    }
    return t;
}

} // namespace

void Supervisor::shutdown(std::string const& name, json const& body, Done done)
{
    Vm* vm = find(name);
    if (!vm)
        return done(no_vm(name));
    auto timeout = stop_timeout(body);
    if (!timeout)
        return done(from_error(timeout.error()));
    if (!vm->active() || vm->run.state == "stopping")
        return done(Reply::error(409, fmt::format("VM '{}' is {}", name, vm->run.state)));
    begin_stop(*vm, *timeout);
    done(Reply(202, vm_json(*vm)));
}

void Supervisor::reboot(std::string const& name, json const& body, Done done)
{
    Vm* vm = find(name);
    if (!vm)
        return done(no_vm(name));
    auto timeout = stop_timeout(body);
    if (!timeout)
        return done(from_error(timeout.error()));
    if (vm->run.state != "running" && vm->run.state != "paused")
        return done(Reply::error(409, fmt::format("VM '{}' is {}", name, vm->run.state)));
    begin_stop(*vm, *timeout);
    vm->reboot_pending = true;
    done(Reply(202, vm_json(*vm)));
}

void Supervisor::kill(std::string const& name, Done done)
{
    Vm* vm = find(name);
    if (!vm)
        return done(no_vm(name));
    if (!vm->active())
        return done(Reply::error(409, fmt::format("VM '{}' is {}", name, vm->run.state)));
    vm->stop_requested = true;
    vm->reboot_pending = false;
    vm->exit_waiters.push_back(std::move(done));
    if (vm->run.state != "stopping")
        set_state(*vm, "stopping");
    send_signal(*vm, SIGKILL);
}

void Supervisor::vm_action(std::string const& name, std::string const& action, std::string const& from, std::string const& to, Done done)
{
    Vm* vm = find(name);
    if (!vm)
        return done(no_vm(name));
    if (vm->run.state != from)
        return done(Reply::error(409, fmt::format("VM '{}' is {}, not {}", name, vm->run.state, from)));
    vm_request(m_ioc, vm_dir(name) + "/api.sock", "PUT", "/api/v1/vm." + action, 5s,
        [this, name, to, run_id = vm->run_id, done = std::move(done)](Result<VmReply> r) {
            Vm* v = find(name);
            if (!v || v->run_id != run_id)
                return done(Reply::error(409, fmt::format("VM '{}' stopped meanwhile", name)));
            if (!r)
                return done(Reply::error(502, r.error().message()));
            if (r->status != 204)
                return done(Reply(r->status == 409 ? 409 : 502,
                    { { "error", fmt::format("The VM refused: {}", r->body.is_object() ? r->body.value("error", "") : "") } }));
            if (v->run.state != "stopping")
                set_state(*v, to);
            done(Reply(200, vm_json(*v)));
        });
}

void Supervisor::pause(std::string const& name, Done done) { vm_action(name, "pause", "running", "paused", std::move(done)); }
void Supervisor::resume(std::string const& name, Done done) { vm_action(name, "resume", "paused", "running", std::move(done)); }

} // namespace hako::serve
