use wire::*;
#[test]
fn probe() {
    let a = NetNs::create_anonymous().unwrap();
    let b = NetNs::create_anonymous().unwrap();
    let mut ha = Handle::in_netns(&a).unwrap();
    println!("1 peer netns b up: {:?}", ha.add_veth(&VethEnd::new("p1"), &VethEnd{netns:Some(b.fd()), up:true, ..VethEnd::new("p2")}));
    println!("2 peer netns b mtu: {:?}", ha.add_veth(&VethEnd::new("q1"), &VethEnd{netns:Some(b.fd()), mtu:Some(9000), ..VethEnd::new("q2")}));
    println!("3 a up, peer netns b: {:?}", ha.add_veth(&VethEnd{up:true, ..VethEnd::new("r1")}, &VethEnd{netns:Some(b.fd()), ..VethEnd::new("r2")}));
    println!("4 peer netns a up: {:?}", ha.add_veth(&VethEnd::new("s1"), &VethEnd{netns:Some(a.fd()), up:true, ..VethEnd::new("s2")}));
}
