fn main() {
    for (_, crd) in ecr_operator::api::all_crds() {
        print!("{}", ecr_operator::api::crd_yaml(&crd).unwrap_or_default());
    }
}
