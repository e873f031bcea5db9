// The CLI's subcommands. Each registers its options on the app and returns the function that runs it.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace hako::cli {

/// `hako run`: runs one VM in the foreground. The returned function runs the parsed command (if it was chosen)
/// and returns the process exit status.
std::function<int()> register_run_command(CLI::App& app);
/// `hako img`: disk image tools (create, info, check, convert, resize). The returned function runs the chosen tool.
std::function<int()> register_img_command(CLI::App& app);

/// `hako screenshot --api-socket PATH FILE.png`: saves a running VM's screen (screenshot_command.cpp).
std::function<int()> register_screenshot_command(CLI::App& app);

/// `hako serve`: the management daemon (serve_command.cpp, src/serve/).
std::function<int()> register_serve_command(CLI::App& app);
/// `hako vm VERB`: VM management through the daemon (vm_command.cpp and vm_*_command.cpp).
std::function<int()> register_vm_command(CLI::App& app);

} // namespace hako::cli
