// touchgate: the touchgate administration tool. See touchgate(8).
#include "cli/app.h"

int main(int argc, char** argv) {
  return touchgate::cli::run(argc, argv);
}
