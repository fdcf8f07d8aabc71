#include "agent.h"

int main(int argc, char **argv) { return bootagent_main(argc, argv); }
