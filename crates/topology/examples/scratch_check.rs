fn main() {
    let p = std::env::args().nth(1).unwrap();
    let src = topology::Source::from_file(std::path::Path::new(&p)).unwrap();
    let env = |k: &str| match k { "SET_VAR" => Some("set".to_string()), _ => None };
    let rf = |p: &std::path::Path| std::fs::read_to_string(p);
    let opts = topology::Options { env: &env, runtime: None, read_file: &rf };
    match topology::load(&src, &opts) {
        Ok(l) => print!("OK\n{}", l.warnings.render(false)),
        Err(e) => print!("ERR\n{}", e.0.render(false)),
    }
}
