package policy

// Decode parses a whole policy document (JSON or YAML) strictly: unknown
// fields, wrong types and missing required fields come back as one
// *ValidationError naming each field. It does not call Validate.
//
// Sections and switches that would open access if they defaulted to false
// (registryAccess, imageAccess, their "enabled", the image restrictions) are
// required; "org", "access", "namespaceAccess" and the lists may be omitted.
// An omitted list decodes as empty, an explicit null as nil, so that
// Decode(json.Marshal(p)) gives p back.
func Decode(data []byte) (Policy, error) {
	root, err := parseTree(data)
	if err != nil {
		return Policy{}, &ValidationError{Errors: []FieldError{{Message: err.Error()}}}
	}
	var d decoder
	p := d.policy(root)
	if err := d.err(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// DecodeRegistryAccess parses a registryAccess section the same way as
// Decode; field paths start with "registryAccess." so that errors read the
// same as for a whole policy.
func DecodeRegistryAccess(data []byte) (RegistryAccess, error) {
	root, err := parseTree(data)
	if err != nil {
		return RegistryAccess{}, &ValidationError{Errors: []FieldError{{Field: fieldRegistryAccess, Message: err.Error()}}}
	}
	var d decoder
	ra := d.registryAccess(root, fieldRegistryAccess)
	if err := d.err(); err != nil {
		return RegistryAccess{}, err
	}
	return ra, nil
}

// DecodeImageAccess parses an imageAccess section the same way as Decode;
// field paths start with "imageAccess.".
func DecodeImageAccess(data []byte) (ImageAccess, error) {
	root, err := parseTree(data)
	if err != nil {
		return ImageAccess{}, &ValidationError{Errors: []FieldError{{Field: fieldImageAccess, Message: err.Error()}}}
	}
	var d decoder
	ia := d.imageAccess(root, fieldImageAccess)
	if err := d.err(); err != nil {
		return ImageAccess{}, err
	}
	return ia, nil
}

const (
	fieldRegistryAccess  = "registryAccess"
	fieldImageAccess     = "imageAccess"
	fieldNamespaceAccess = "namespaceAccess"
)

// decoder walks a parsed tree against the schema, collecting every problem.
type decoder struct {
	problems
}

// fields visits each key of an object node, reporting unknown keys and, at
// the end, required keys that were absent. visit returns false for a key the
// schema does not know.
func (d *decoder) fields(n *node, path string, required []string, visit func(key string, v *node, path string) bool) {
	if !d.want(n, kindObject, path) {
		return
	}
	for i, k := range n.keys {
		if !visit(k, n.vals[i], joinPath(path, k)) {
			d.add(joinPath(path, k), "unknown field")
		}
	}
	for _, r := range required {
		if !n.has(r) {
			d.add(joinPath(path, r), "required")
		}
	}
}

// want reports a wrong type at path and returns false.
func (d *decoder) want(n *node, k nodeKind, path string) bool {
	if n.kind == k {
		return true
	}
	what := k.String()
	if k == kindBool {
		what = "true or false"
	}
	if path == "" {
		d.add("", "the document must be %s, not %s", what, n.kind)
	} else {
		d.add(path, "must be %s, not %s", what, n.kind)
	}
	return false
}

func (d *decoder) str(n *node, path string) string {
	if d.want(n, kindString, path) {
		return n.str
	}
	return ""
}

func (d *decoder) boolean(n *node, path string) bool {
	if d.want(n, kindBool, path) {
		return n.b
	}
	return false
}

// strings decodes a list of strings; null gives nil.
func (d *decoder) strings(n *node, path string) []string {
	if n.kind == kindNull {
		return nil
	}
	if !d.want(n, kindList, path) {
		return nil
	}
	out := make([]string, 0, len(n.items))
	for i, it := range n.items {
		out = append(out, d.str(it, indexPath(path, i)))
	}
	return out
}

func (d *decoder) policy(n *node) Policy {
	p := Policy{
		RegistryAccess: RegistryAccess{Registries: []Registry{}},
		ImageAccess:    ImageAccess{OrgNamespaces: []string{}, RepositoryAllowlist: []string{}},
	}
	d.fields(n, "", []string{fieldRegistryAccess, fieldImageAccess}, func(k string, v *node, path string) bool {
		switch k {
		case "org":
			p.Org = d.str(v, path)
		case fieldRegistryAccess:
			p.RegistryAccess = d.registryAccess(v, path)
		case fieldImageAccess:
			p.ImageAccess = d.imageAccess(v, path)
		case fieldNamespaceAccess:
			p.NamespaceAccess = d.namespaceAccess(v, path)
		default:
			return false
		}
		return true
	})
	return p
}

func (d *decoder) registryAccess(n *node, path string) RegistryAccess {
	ra := RegistryAccess{Registries: []Registry{}}
	d.fields(n, path, []string{"enabled"}, func(k string, v *node, path string) bool {
		switch k {
		case "enabled":
			ra.Enabled = d.boolean(v, path)
		case "registries":
			ra.Registries = d.registries(v, path)
		default:
			return false
		}
		return true
	})
	return ra
}

func (d *decoder) registries(n *node, path string) []Registry {
	if n.kind == kindNull {
		return nil
	}
	if !d.want(n, kindList, path) {
		return nil
	}
	out := make([]Registry, 0, len(n.items))
	for i, it := range n.items {
		out = append(out, d.registry(it, indexPath(path, i)))
	}
	return out
}

func (d *decoder) registry(n *node, path string) Registry {
	var r Registry
	d.fields(n, path, []string{"host"}, func(k string, v *node, path string) bool {
		switch k {
		case "host":
			r.Host = d.str(v, path)
		case "access":
			r.Access = Access(d.str(v, path))
		case "description":
			r.Description = d.str(v, path)
		default:
			return false
		}
		return true
	})
	return r
}

var restrictionFields = []string{"officialImages", "verifiedPublisherImages", "sponsoredOSSImages", "communityImages"}

func (d *decoder) imageAccess(n *node, path string) ImageAccess {
	ia := ImageAccess{OrgNamespaces: []string{}, RepositoryAllowlist: []string{}}
	required := append([]string{"enabled"}, restrictionFields...)
	d.fields(n, path, required, func(k string, v *node, path string) bool {
		switch k {
		case "enabled":
			ia.Enabled = d.boolean(v, path)
		case "officialImages":
			ia.OfficialImages = Restriction(d.str(v, path))
		case "verifiedPublisherImages":
			ia.VerifiedPublisherImages = Restriction(d.str(v, path))
		case "sponsoredOSSImages":
			ia.SponsoredOSSImages = Restriction(d.str(v, path))
		case "communityImages":
			ia.CommunityImages = Restriction(d.str(v, path))
		case "orgNamespaces":
			ia.OrgNamespaces = d.strings(v, path)
		case "repositoryAllowlist":
			ia.RepositoryAllowlist = d.strings(v, path)
		default:
			return false
		}
		return true
	})
	return ia
}

func (d *decoder) namespaceAccess(n *node, path string) NamespaceAccess {
	var na NamespaceAccess
	// Present but without its switch is refused like "enabled": the writer
	// meant to say something, and guessing false would allow every push.
	d.fields(n, path, []string{"pushOnlyToOrgNamespaces"}, func(k string, v *node, path string) bool {
		switch k {
		case "pushOnlyToOrgNamespaces":
			na.PushOnlyToOrgNamespaces = d.boolean(v, path)
		default:
			return false
		}
		return true
	})
	return na
}
