fn main() {
    std::process::exit(dragnet::cli::main());
}
