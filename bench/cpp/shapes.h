// Reads bench/shapes/<name>.txt: one layer per line, integers, '#' starts a comment.
#pragma once
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mkbench {

inline std::vector<std::vector<long>> read_shapes(const std::string& name) {
  std::vector<std::vector<long>> rows;
  std::ifstream f(std::string(MK_SHAPES_DIR) + "/" + name);
  std::string line;
  while (std::getline(f, line)) {
    line = line.substr(0, line.find('#'));
    std::istringstream ss(line);
    std::vector<long> row;
    long v;
    while (ss >> v) row.push_back(v);
    if (!row.empty()) rows.push_back(row);
  }
  return rows;
}

}  // namespace mkbench
