// hako: one binary, several subcommands (one file per verb: run_command.cpp, ...).
#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "vmm/config.h"

int main(int argc, char** argv)
{
    CLI::App app { "hako: a virtual machine monitor for Linux KVM", "hako" };
    app.set_version_flag("--version", std::string("hako ") + HAKO_VERSION);
    app.require_subcommand(1);
    auto run = hako::cli::register_run_command(app);
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        int r = app.exit(e);
        return r == 0 ? 0 : hako::vmm::exit_status::USAGE;
    }
    return run();
}
