// The server's route table and the contract (src/api/openapi.yaml) list the same operations. The python API test
// checks the other half: that what the contract lists is served and answers in its schemas.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "api/api_server.h"

namespace {

std::set<std::string> contract_operations()
{
    std::ifstream in(HAKO_SOURCE_DIR "/src/api/openapi.yaml");
    EXPECT_TRUE(in) << "cannot read openapi.yaml";
    std::set<std::string> ops;
    std::string line, path;
    bool in_paths = false;
    std::regex const path_re("^  (/[^:]+):\\s*$");
    std::regex const method_re("^    (get|put|post|patch|delete):\\s*$");
    std::smatch m;
    while (std::getline(in, line)) {
        if (line == "paths:") {
            in_paths = true;
            continue;
        }
        if (in_paths && !line.empty() && line[0] != ' ')
            break;
        if (!in_paths)
            continue;
        if (std::regex_match(line, m, path_re))
            path = m[1];
        else if (std::regex_match(line, m, method_re)) {
            std::string method = m[1];
            for (auto& c : method)
                c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            ops.insert(method + " /api/v1" + path);
        }
    }
    return ops;
}

TEST(ApiRoutes, MatchTheOpenApiContract)
{
    std::set<std::string> served;
    for (auto const& r : hako::api::routes())
        served.insert(std::string(r.method) + " " + std::string(r.path));
    auto const contract = contract_operations();
    EXPECT_FALSE(contract.empty());
    EXPECT_EQ(served, contract);
}

} // namespace
