package storage_test

import (
	"testing"

	"github.com/logicspike/mediad/internal/testsvc"
)

func TestMain(m *testing.M) { testsvc.Main(m) }
