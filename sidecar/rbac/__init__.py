"""Role-based access control: allow and deny rules by principal, method and model."""
