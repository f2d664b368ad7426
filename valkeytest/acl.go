package valkeytest

import (
	"fmt"
	"slices"
)

// aclUser is a user added by AddUser: the ACL rules applied to it so far,
// in order, replayed as a --user argument at every launch.
type aclUser struct {
	name  string
	rules []string
}

// AddUser creates the ACL user name on the running server, or replaces it
// (ACL SETUSER name reset on >password rules...), with password and the
// given ACL rules: "~*" for every key, "&*" for every channel, "+@all",
// "+get", "-set", "+@read" and so on. With no rules the user can
// authenticate and run nothing. The user is created again, as it is then,
// at every [Server.Restart]. name must not be "default" nor
// Options.Username: their password is changed with SetUserPassword.
// Safe for concurrent use.
func (s *Server) AddUser(name, password string, rules ...string) error {
	if err := s.checkUser(name, false); err != nil {
		return err
	}
	all := append([]string{"reset", "on", ">" + password}, rules...)
	if err := s.setUser(name, all); err != nil {
		return err
	}
	s.credMu.Lock()
	defer s.credMu.Unlock()
	s.users = slices.DeleteFunc(s.users, func(u aclUser) bool { return u.name == name })
	s.users = append(s.users, aclUser{name: name, rules: all})
	return nil
}

// SetUserPassword replaces every password of the ACL user name with
// password (ACL SETUSER name resetpass >password), on the running server
// and for every later Restart. Connections already authenticated stay so;
// new ones need the new password. name is a user made by AddUser, or
// "default", or Options.Username: for the last two (the user valkeytest
// itself authenticates as) valkeytest's own connections, Password and
// Restart use the new password from then on. Safe for concurrent use.
func (s *Server) SetUserPassword(name, password string) error {
	admin := name == s.adminUser()
	if err := s.checkUser(name, true); err != nil {
		return err
	}
	if !admin && !s.hasUser(name) {
		return fmt.Errorf("valkeytest: SetUserPassword: no user %q made by AddUser", name)
	}
	rules := []string{"resetpass", ">" + password}
	if err := s.setUser(name, rules); err != nil {
		return err
	}
	s.credMu.Lock()
	defer s.credMu.Unlock()
	if admin {
		s.password = password
		return nil
	}
	s.appendRulesLocked(name, rules)
	return nil
}

// AddUserPassword adds password to the passwords of the ACL user name,
// made by AddUser (ACL SETUSER name >password): the old and the new
// password both work until SetUserPassword drops the old one, which is
// how a password is rotated without a gap. Kept across Restart. Safe for
// concurrent use.
func (s *Server) AddUserPassword(name, password string) error {
	if err := s.checkUser(name, false); err != nil {
		return err
	}
	if !s.hasUser(name) {
		return fmt.Errorf("valkeytest: AddUserPassword: no user %q made by AddUser", name)
	}
	rules := []string{">" + password}
	if err := s.setUser(name, rules); err != nil {
		return err
	}
	s.credMu.Lock()
	defer s.credMu.Unlock()
	s.appendRulesLocked(name, rules)
	return nil
}

func (s *Server) hasUser(name string) bool {
	s.credMu.Lock()
	defer s.credMu.Unlock()
	return slices.ContainsFunc(s.users, func(u aclUser) bool { return u.name == name })
}

// adminUser is the user valkeytest authenticates as.
func (s *Server) adminUser() string {
	if s.opts.Username != "" {
		return s.opts.Username
	}
	return "default"
}

func (s *Server) checkUser(name string, adminOK bool) error {
	if name == "" {
		return fmt.Errorf("valkeytest: empty ACL user name")
	}
	if !adminOK && (name == "default" || name == s.adminUser()) {
		return fmt.Errorf("valkeytest: ACL user %q is the one valkeytest uses; change its password with SetUserPassword", name)
	}
	return nil
}

func (s *Server) setUser(name string, rules []string) error {
	if _, err := s.do(toolIOTimeout, append([]string{"ACL", "SETUSER", name}, rules...)...); err != nil {
		return fmt.Errorf("%s: ACL SETUSER %s: %w", s.label(), name, err)
	}
	return nil
}

func (s *Server) appendRulesLocked(name string, rules []string) {
	for i, u := range s.users {
		if u.name == name {
			s.users[i].rules = append(slices.Clone(u.rules), rules...)
			return
		}
	}
}
