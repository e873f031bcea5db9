// hako: one binary, several subcommands (one file per verb: run_command.cpp, ...).
#include <cstdio>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "vmm/config.h"

int main(int argc, char** argv)
{
    CLI::App app { "hako: a virtual machine monitor for Linux KVM", "hako" };
    app.set_version_flag("--version", std::string("hako ") + HAKO_VERSION);
    app.require_subcommand(1);
    auto run = hako::cli::register_run_command(app);
    auto img = hako::cli::register_img_command(app);
    auto screenshot = hako::cli::register_screenshot_command(app);
    auto serve = hako::cli::register_serve_command(app);
    auto vm = hako::cli::register_vm_command(app);
    try {
        app.parse(argc, argv);
    } catch (CLI::CallForHelp const& e) {
        return app.exit(e);
    } catch (CLI::CallForAllHelp const& e) {
        return app.exit(e);
    } catch (CLI::Success const& e) {
        return app.exit(e); // --version
    } catch (CLI::ParseError const& e) {
        // One line, like every other hako error; --help has the details.
        std::fprintf(stderr, "hako: %s (see hako --help)\n", e.what());
        return hako::vmm::exit_status::USAGE;
    }
    if (app.got_subcommand("img"))
        return img();
    if (app.got_subcommand("screenshot"))
        return screenshot();
    if (app.got_subcommand("serve"))
        return serve();
    if (app.got_subcommand("vm"))
        return vm();
    return run();
}
