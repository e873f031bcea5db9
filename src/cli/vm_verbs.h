// `hako vm VERB`: the verbs, grouped by file: vm_list_command.cpp (list, show), vm_define_command.cpp (create,
// edit, clone, disk-create), vm_power_command.cpp (start, stop, kill, reboot, pause, resume, delete),
// vm_console_command.cpp (console). Each registers its subcommands on `vm` and adds one runner per verb.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/daemon_client.h"

namespace hako::cli {

struct VmCommon {
    std::string socket; // empty: HAKO_SOCKET or the default
    bool json { false };
    std::string resolved_socket() const;
};

/// A verb: its subcommand and what runs it.
struct VmVerb {
    CLI::App* command;
    std::function<int()> run;
};

void register_vm_list(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs);
void register_vm_define(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs);
void register_vm_power(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs);
void register_vm_console(CLI::App& vm, std::shared_ptr<VmCommon> common, std::vector<VmVerb>& verbs);

/// Exit statuses of `hako vm`: 0 done, 1 the daemon refused (its error on stderr), 2 usage, 3 daemon unreachable.
constexpr int VM_REFUSED = 1;
constexpr int VM_UNREACHABLE = 3;

/// Prints "hako vm: message" and returns status.
int vm_fail(int status, std::string const& message);
/// Runs one request; on failure prints the error and sets `status`. Returns the reply on success (2xx).
std::optional<DaemonReply> vm_call(VmCommon const& common, std::string const& method, std::string const& target,
    nlohmann::json const& body, int& status);
/// Prints a VM the way people read it (or its JSON with --json).
void print_vm(VmCommon const& common, nlohmann::json const& vm);

} // namespace hako::cli
