extern "C" {
    fn greet() -> i32;
}

fn main() {
    // SAFETY: greet() (libgreet, C) takes no arguments and returns an int.
    println!("{}", unsafe { greet() });
}
